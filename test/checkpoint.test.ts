import "./helpers/setup.js";
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, readFile, writeFile, readdir, unlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numpy as np, random, tree } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import type { VectorFlowConfig } from "../src/models/vector.js";
import { makeRng } from "../src/core/prng.js";
import { fitStandardizer } from "../src/data/standardize.js";
import {
  fit,
  stateToDevice,
  type FitOptions,
  type TrainState,
  type VectorData,
} from "../src/train/fit.js";
import { decodeRun, encodeRun, loadRun, saveRun, RUN_VERSION } from "../src/io/checkpoint.js";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.js";
import { values } from "./helpers/arrays.js";
import { flatten } from "../src/train/flat-params.js";

const config: VectorFlowConfig = { model: "realnvp", dim: 2, layers: 2, hidden: [8] };

function data(rows: number, seed: number): VectorData {
  const rng = makeRng(seed);
  const x = new Float32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    const z = rng.normal();
    x[2 * i] = z;
    x[2 * i + 1] = 0.8 * z + 0.6 * rng.normal();
  }
  return { x, rows };
}

describe("run directories", () => {
  let root: string;
  const flow = buildFlow(config);
  const train = data(256, 1);
  const options: FitOptions = {
    steps: 12,
    batchSize: 32,
    validFraction: 0.25,
    evalEvery: 4,
    optimizer: { kind: "adam", lr: 1e-2 },
  };
  const states: TrainState[] = [];
  let good: string; // a valid run directory, copied by each corruption case

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "clayflow-ckpt-"));
    const result = await fit(flow, flow.init(random.key(0)), train, {
      ...options,
      checkpointEvery: 6,
      onCheckpoint: (s) => void states.push(s),
    });
    tree.dispose([result.params, result.bestParams]);
    good = join(root, "good");
    await saveRun(good, {
      flow,
      state: states[1],
      training: options,
      data: { name: "toy", rows: 256 },
    });
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A fresh copy of the good run, after `edit` (which gets the directory). */
  async function variant(name: string, edit: (dir: string) => Promise<void>): Promise<string> {
    const dir = join(root, name);
    await saveRun(dir, { flow, state: states[1], training: options });
    await edit(dir);
    return dir;
  }

  /**
   * Rewrite weights.safetensors through `edit` of its decoded tensors and metadata; with
   * `rehash`, config.json's checksum is updated to match (so only the edit itself is wrong).
   */
  async function editWeights(
    dir: string,
    edit: (t: Map<string, any>, m: Record<string, string>) => void,
    { rehash = false } = {},
  ) {
    const path = join(dir, "weights.safetensors");
    const { tensors, metadata } = decodeSafetensors(await readFile(path));
    edit(tensors, metadata);
    const bytes = encodeSafetensors(tensors, metadata);
    await writeFile(path, bytes);
    if (rehash) await editConfig(dir, (c) => (c.weightsSha256 = sha256(bytes)));
  }

  async function editConfig(dir: string, edit: (c: any) => void) {
    const p = join(dir, "config.json");
    const c = JSON.parse(await readFile(p, "utf8"));
    edit(c);
    await writeFile(p, JSON.stringify(c));
  }

  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

  /** loadRun(dir) fails with one line matching `pattern`. */
  async function refuses(dir: string, pattern: RegExp, what: string) {
    await assert.rejects(
      loadRun(dir),
      (e: Error) => {
        assert.match(e.message, pattern, what);
        assert.ok(!e.message.includes("\n"), `${what}: one line`);
        return true;
      },
      what,
    );
  }

  it("round trip: the loaded flow gives identical logProb, and the state is unchanged", async () => {
    const std = fitStandardizer(train.x, 2);
    await saveRun(good, {
      flow,
      state: states[1],
      preprocessing: std,
      training: { ...options, onProgress: () => {} },
      data: { name: "toy", rows: 256, columns: ["u", "v"] },
    });
    const run = await loadRun(good);
    assert.equal(run.config.format, "clayflow-run");
    assert.equal(run.config.version, RUN_VERSION);
    assert.deepEqual(run.config.model, flow.config);
    assert.deepEqual(run.config.data, {
      name: "toy",
      columns: ["u", "v"],
      dim: 2,
      rows: 256,
      contextDim: 0,
      contextColumns: null,
    });
    assert.equal(run.contextPreprocessing, null);
    assert.deepEqual(run.preprocessing, std);
    assert.equal(
      (run.config.training.options as any).onProgress,
      undefined,
      "callbacks are not stored",
    );
    assert.equal(run.config.training.progress.step, 12);
    const saved = states[1];
    assert.deepEqual(run.state, saved, "training state round trip");
    assert.ok(run.bestParams !== null);

    const x = np.array(data(16, 9).x, { shape: [16, 2] });
    const device = stateToDevice(saved);
    const unravel = flatten(flow.init(random.key(5))).unravel;
    const want = await values(flow.logProb(unravel(device.params) as any, x.ref));
    const wantBest = await values(flow.logProb(unravel(device.best!) as any, x.ref));
    tree.dispose([device.optState]);
    assert.deepEqual(await values(run.flow.logProb(run.params, x.ref)), want);
    assert.deepEqual(await values(run.flow.logProb(run.bestParams!, x)), wantBest);
  });

  it("encodeRun / decodeRun are the run directory's files in memory, byte for byte", async () => {
    const std = fitStandardizer(train.x, 2);
    const run = {
      flow,
      state: states[1],
      preprocessing: std,
      training: options,
      data: { name: "toy", rows: 256 },
    };
    const dir = join(root, "in-memory");
    await saveRun(dir, run);
    const files = encodeRun(run);
    assert.equal(files.config, await readFile(join(dir, "config.json"), "utf8"));
    assert.deepEqual(
      files.weights,
      new Uint8Array(await readFile(join(dir, "weights.safetensors"))),
    );
    const fromDisk = await loadRun(dir);
    for (const loaded of [
      decodeRun(files),
      decodeRun({ config: new TextEncoder().encode(files.config), weights: files.weights }),
    ]) {
      assert.deepEqual(loaded.config, fromDisk.config);
      assert.deepEqual(loaded.state, fromDisk.state);
      assert.deepEqual(loaded.preprocessing, std);
      const x = np.array(data(8, 3).x, { shape: [8, 2] });
      assert.deepEqual(
        await values(loaded.flow.logProb(loaded.params, x.ref)),
        await values(fromDisk.flow.logProb(tree.ref(fromDisk.params), x)),
      );
      tree.dispose(loaded.bestParams); // logProb consumed loaded.params
    }
    tree.dispose([fromDisk.params, fromDisk.bestParams]);
    // Errors name the files as they would be named in a run directory.
    const truncated = {
      config: files.config,
      weights: files.weights.subarray(0, files.weights.length - 3),
    };
    assert.throws(
      () => decodeRun(truncated),
      /^Error: weights\.safetensors: corrupt or truncated file/,
    );
    assert.throws(
      () => decodeRun({ config: "{", weights: files.weights }),
      /^Error: config\.json: not valid JSON/,
    );
    assert.throws(
      () => encodeRun({ flow, state: { ...states[1], params: new Float32Array(3) } }),
      /^Error: encodeRun: state\.params has 3 values/,
    );
  });

  it("gives one clear sentence for every broken run directory", async () => {
    const cases: [string, () => Promise<string>, RegExp][] = [
      ["missing directory", async () => join(root, "nope"), /run directory .*nope does not exist/],
      [
        "a file, not a directory",
        async () => {
          const f = join(root, "file");
          await writeFile(f, "x");
          return f;
        },
        /is not a directory/,
      ],
      [
        "missing config.json",
        () => variant("noconfig", (d) => unlink(join(d, "config.json"))),
        /has no config\.json/,
      ],
      [
        "missing weights",
        () => variant("noweights", (d) => unlink(join(d, "weights.safetensors"))),
        /has no weights\.safetensors/,
      ],
      [
        "truncated config.json",
        () =>
          variant("tconfig", async (d) => {
            const p = join(d, "config.json");
            await writeFile(p, (await readFile(p)).subarray(0, 40));
          }),
        /config\.json: not valid JSON, the file is corrupt or truncated/,
      ],
      [
        "not a run",
        () =>
          variant("format", (d) =>
            writeFile(join(d, "config.json"), JSON.stringify({ format: "other" })),
          ),
        /format is "other", expected "clayflow-run"/,
      ],
      [
        "config from the future",
        () =>
          variant("future", async (d) => {
            const p = join(d, "config.json");
            const c = JSON.parse(await readFile(p, "utf8"));
            await writeFile(p, JSON.stringify({ ...c, version: RUN_VERSION + 1 }));
          }),
        /version 2 is newer than this clayflow can read \(up to 1\); upgrade clayflow/,
      ],
      [
        "weights from the future",
        () => variant("wfuture", (d) => editWeights(d, (_t, m) => (m.version = "7"))),
        /weights\.safetensors: __metadata__: version 7 is newer/,
      ],
      [
        "truncated weights",
        () =>
          variant("tweights", async (d) => {
            const p = join(d, "weights.safetensors");
            const b = await readFile(p);
            await writeFile(p, b.subarray(0, b.length - 10));
          }),
        /weights\.safetensors: corrupt or truncated file \(safetensors: .*\)/,
      ],
      [
        "garbage weights",
        () => variant("gweights", (d) => writeFile(join(d, "weights.safetensors"), "hello, world")),
        /weights\.safetensors: corrupt or truncated file/,
      ],
      [
        "config edited to another model",
        () =>
          variant("othermodel", async (d) => {
            const p = join(d, "config.json");
            const c = JSON.parse(await readFile(p, "utf8"));
            await writeFile(p, JSON.stringify({ ...c, model: { ...c.model, hidden: [12] } }));
          }),
        /weights\.safetensors was written for a different model than .*config\.json describes/,
      ],
      [
        "shape mismatch",
        () =>
          variant("shape", async (d) => {
            // Both files claim hidden [12], but the tensors were trained with hidden [8].
            const p = join(d, "config.json");
            const c = JSON.parse(await readFile(p, "utf8"));
            const model = { ...c.model, hidden: [12] };
            await writeFile(p, JSON.stringify({ ...c, model }));
            await editWeights(d, (_t, m) => (m.model = JSON.stringify(model)));
          }),
        /weights\.safetensors: params\/bijector\.0\.net\.layers\.0\.b has shape \[8\], the model config needs \[12\]/,
      ],
      [
        "missing tensor",
        () => variant("missing", (d) => editWeights(d, (t) => t.delete("optimizer/v"))),
        /optimizer\/v is missing; the model config needs it with shape \[\d+\]/,
      ],
      [
        "extra tensor",
        () =>
          variant("extra", (d) =>
            editWeights(d, (t) =>
              t.set("params/evil", { dtype: "F32", shape: [1], data: new Float32Array(1) }),
            ),
          ),
        /unexpected tensor "params\/evil"/,
      ],
      [
        "wrong dtype",
        () =>
          variant("dtype", (d) =>
            editWeights(d, (t) => {
              const m = t.get("optimizer/m");
              t.set("optimizer/m", {
                dtype: "F64",
                shape: m.shape,
                data: Float64Array.from(m.data),
              });
            }),
          ),
        /optimizer\/m has dtype F64, expected F32/,
      ],
      [
        "broken training state",
        () =>
          variant("tstate", (d) => editWeights(d, (_t, m) => (m.training_state = '{"step": -1}'))),
        /training_state\.step must be a non-negative integer/,
      ],
    ];
    for (const [what, make, pattern] of cases) {
      const dir = await make();
      await assert.rejects(
        loadRun(dir),
        (e: Error) => {
          assert.match(e.message, pattern, what);
          assert.ok(!e.message.includes("\n"), `${what}: one line`);
          return true;
        },
        what,
      );
    }
  });

  it("a save killed mid-way leaves a loadable run", async () => {
    const dir = join(root, "killed");
    await saveRun(dir, { flow, state: states[0], training: options });
    const kill = (file: string) => async (_tmp: string, f: string) => {
      if (f === file) throw new Error("killed");
    };
    // Killed before the weights' rename: the previous checkpoint, untouched.
    await assert.rejects(
      saveRun(dir, { flow, state: states[1] }, { beforeRename: kill("weights.safetensors") }),
      /killed/,
    );
    let run = await loadRun(dir);
    assert.equal(run.state.step, 6);
    assert.deepEqual(run.state.params, states[0].params);
    tree.dispose([run.params, run.bestParams!]);
    // Killed between the two files: new weights (with their training state) beside the old config.
    await assert.rejects(
      saveRun(dir, { flow, state: states[1] }, { beforeRename: kill("config.json") }),
      /killed/,
    );
    run = await loadRun(dir);
    assert.equal(run.state.step, 12, "the training state comes from the weights");
    assert.equal(run.config.training.progress.step, 6, "config.json is the previous one");
    assert.deepEqual(run.state.params, states[1].params);
    tree.dispose([run.params, run.bestParams!]);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ["config.json", "weights.safetensors"],
      "no temp files left",
    );
  });

  it("keeps the SHA-256 of the weights file in config.json and refuses a file that changed", async () => {
    const dir = await variant("checksum", async () => {});
    const bytes = await readFile(join(dir, "weights.safetensors"));
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    assert.equal(
      config.weightsSha256,
      sha256(bytes),
      "the SHA-256 of the file's bytes, as any standard library computes it",
    );
    // One flipped bit in the last tensor value (a float's lowest mantissa bit: still finite, a different model).
    const flipped = Uint8Array.from(bytes);
    flipped[flipped.length - 4] ^= 1;
    await writeFile(join(dir, "weights.safetensors"), flipped);
    await refuses(
      dir,
      /weights\.safetensors: its SHA-256 \([0-9a-f]{12}…\) is not the one .*config\.json records .*the checkpoint is corrupt/,
      "flipped bit",
    );
    assert.throws(
      () => decodeRun({ config: JSON.stringify(config), weights: flipped }),
      /^Error: weights\.safetensors: its SHA-256 .* is not the one config\.json records/,
    );
    assert.throws(
      () =>
        decodeRun({ config: JSON.stringify({ ...config, weightsSha256: "abc" }), weights: bytes }),
      /weightsSha256 must be 64 lowercase hex digits/,
    );
    // A run written before checksums were kept (no weightsSha256) loads as before, unverified.
    await editConfig(dir, (c) => delete c.weightsSha256);
    const old = await loadRun(dir);
    assert.equal(old.config.weightsSha256, null);
    assert.equal(old.state.step, 12);
    tree.dispose([old.params, old.bestParams]);
  });

  it("refuses non-finite weights, naming the tensor, even when the checksum matches", async () => {
    const leaf = "bijector.0.net.layers.0.b";
    const cases: [string, (t: Map<string, any>) => void, RegExp][] = [
      [
        "NaN in best/",
        (t) => void (t.get(`best/${leaf}`).data[1] = NaN),
        /tensor best\/bijector\.0\.net\.layers\.0\.b holds 1 non-finite value \(NaN at index 1\): the checkpoint is corrupt/,
      ],
      [
        "NaN in params/",
        (t) => void t.get(`params/${leaf}`).data.fill(NaN),
        /tensor params\/bijector\.0\.net\.layers\.0\.b holds 8 non-finite values \(NaN at index 0\)/,
      ],
      [
        "Infinity in the optimizer",
        (t) => void (t.get("optimizer/v").data[5] = Infinity),
        /tensor optimizer\/v holds 1 non-finite value \(Infinity at index 5\)/,
      ],
    ];
    for (const [what, edit, pattern] of cases) {
      const dir = await variant(
        `nonfinite-${what.split(" ")[0]}-${cases.findIndex((c) => c[0] === what)}`,
        (d) => editWeights(d, edit, { rehash: true }),
      );
      await refuses(dir, pattern, what);
    }
  });

  it("validates the training options and progress in config.json on load", async () => {
    const cases: [string, (c: any) => void, RegExp][] = [
      [
        "negative steps",
        (c) => (c.training.options.steps = -5),
        /config\.json: training\.options\.steps must be a positive integer, got -5/,
      ],
      [
        "fractional batch size",
        (c) => (c.training.options.batchSize = 2.5),
        /training\.options\.batchSize must be a positive integer, got 2\.5/,
      ],
      [
        "zero evalEvery",
        (c) => (c.training.options.evalEvery = 0),
        /training\.options\.evalEvery must be a positive integer, got 0/,
      ],
      [
        "validFraction 1",
        (c) => (c.training.options.validFraction = 1),
        /training\.options\.validFraction must be a fraction in \[0, 1\), got 1/,
      ],
      [
        "seed a string",
        (c) => (c.training.options.seed = "7"),
        /training\.options\.seed must be a finite number, got "7"/,
      ],
      [
        "negative minDelta",
        (c) => (c.training.options.minDelta = -1),
        /training\.options\.minDelta must be a non-negative number, got -1/,
      ],
      [
        "a typo",
        (c) => (c.training.options.batchsize = 32),
        /training\.options has unknown field "batchsize"/,
      ],
      [
        "lr a string",
        (c) => (c.training.options.optimizer.lr = "fast"),
        /training\.options\.optimizer: schedule: config must be an object, got "fast"/,
      ],
      [
        "negative lr",
        (c) => (c.training.options.optimizer.lr = -0.1),
        /training\.options\.optimizer: lr must be a positive number, got -0\.1/,
      ],
      [
        "unknown optimizer",
        (c) => (c.training.options.optimizer.kind = "sgd"),
        /training\.options\.optimizer: optimizer: kind must be "adam" or "adamw", got "sgd"/,
      ],
      [
        "bad schedule",
        (c) => (c.training.options.optimizer.lr = { kind: "cosine", lr: 1e-3, totalSteps: 0 }),
        /training\.options\.optimizer: schedule: totalSteps must be an integer greater than warmupSteps/,
      ],
      [
        "options missing",
        (c) => delete c.training.options,
        /config\.json: training\.options must be an object of fit options, got undefined/,
      ],
      [
        "training missing",
        (c) => delete c.training,
        /config\.json: training must be an object \{ options, progress \}/,
      ],
      [
        "negative progress step",
        (c) => (c.training.progress.step = -1),
        /training\.progress\.step must be a non-negative integer, got -1/,
      ],
    ];
    for (const [what, edit, pattern] of cases) {
      const dir = await variant(`options-${cases.findIndex((c) => c[0] === what)}`, (d) =>
        editConfig(d, edit),
      );
      await refuses(dir, pattern, what);
    }
  });

  const noSpace = () =>
    Object.assign(new Error("ENOSPC: no space left on device, write"), {
      code: "ENOSPC",
      errno: -28,
      syscall: "write",
    });
  /** A write function that fails with ENOSPC for `file`, as a full disk would, and writes the others. */
  const fullDiskFor = (file: string) => async (path: string, data: string | Uint8Array) => {
    if (path.endsWith(file)) throw noSpace();
    await writeFile(path, data);
  };

  it("a full disk: the error names the file and says the previous checkpoint is intact", async () => {
    const dir = join(root, "full");
    await saveRun(dir, { flow, state: states[0], training: options });
    const before = await readFile(join(dir, "weights.safetensors"));
    await assert.rejects(
      saveRun(
        dir,
        { flow, state: states[1], training: options },
        { write: fullDiskFor("weights.safetensors") },
      ),
      (e: NodeJS.ErrnoException) => {
        assert.equal(
          e.message,
          `saveRun: cannot write ${join(dir, "weights.safetensors")}: no space left on device; the previous checkpoint in ${dir} is intact`,
        );
        assert.equal(e.code, "ENOSPC");
        return true;
      },
    );
    assert.deepEqual(await readFile(join(dir, "weights.safetensors")), before);
    let run = await loadRun(dir);
    assert.equal(run.state.step, 6, "the previous checkpoint loads, checksum and all");
    tree.dispose([run.params, run.bestParams]);
    // The weights landed, config.json did not: the run still loads, at the new step.
    await assert.rejects(
      saveRun(
        dir,
        { flow, state: states[1], training: options },
        { write: fullDiskFor("config.json") },
      ),
      new RegExp(
        `^Error: saveRun: cannot write ${join(dir, "config.json").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: no space left on device; the checkpoint in .* is intact and loads at step 12`,
      ),
    );
    run = await loadRun(dir);
    assert.equal(run.state.step, 12);
    tree.dispose([run.params, run.bestParams]);
  });

  it("a failed first save leaves no half run and no directory behind", async () => {
    for (const file of ["weights.safetensors", "config.json"]) {
      const parent = join(root, `first-${file}`);
      const dir = join(parent, "run");
      await assert.rejects(
        saveRun(dir, { flow, state: states[0], training: options }, { write: fullDiskFor(file) }),
        (e: Error) =>
          /no space left on device; no checkpoint was saved/.test(e.message) &&
          e.message.includes(join(dir, file)),
      );
      assert.ok(!existsSync(parent), `${file}: the directories saveRun created are gone`);
    }
    // A directory that existed before stays (empty, as it was).
    const mine = join(root, "first-existing");
    await saveRun(mine, { flow, state: states[0], training: options });
    await rm(join(mine, "config.json"));
    await rm(join(mine, "weights.safetensors"));
    await assert.rejects(
      saveRun(
        mine,
        { flow, state: states[0], training: options },
        { write: fullDiskFor("weights.safetensors") },
      ),
      /no checkpoint was saved/,
    );
    assert.deepEqual(await readdir(mine), []);
  });

  it("loading removes the temp files of writes whose process died, and only those", async () => {
    const dir = await variant("leftovers", async () => {});
    // A pid that is surely gone: a process that has exited and been reaped.
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    const names = {
      dead: `.weights.safetensors.${dead}.0a1b2c3d4e5f.tmp`,
      deadConfig: `.config.json.${dead}.00ff00ff00ff.tmp`,
      mine: `.weights.safetensors.${process.pid}.0a1b2c3d4e5f.tmp`, // this process, writing now
      alive: `.config.json.${process.ppid}.0a1b2c3d4e5f.tmp`, // another live process
      other: "notes.tmp",
    };
    for (const n of Object.values(names)) await writeFile(join(dir, n), "partial");
    const run = await loadRun(dir);
    tree.dispose([run.params, run.bestParams]);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      [names.mine, names.alive, "config.json", names.other, "weights.safetensors"].sort(),
    );
  });
});
