/**
 * The package as a user gets it: `npm pack` (which builds dist/ through the prepack script),
 * the tarball installed into a fresh project, and `import ... from "clayflow"` run in Node and
 * type-checked by tsc. This checks the name, `exports`, `types` and `files` of package.json on
 * the packed tarball, not on the source tree.
 *
 * The install is offline: the engine comes from this repository's node_modules (a fresh
 * project has no registry metadata cached for it, so `npm install --offline @jax-js/jax` could
 * not resolve it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const tsc = join(root, "node_modules/typescript/bin/tsc");

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 120_000 });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// A consumer's program: the public API used the way the README shows, with types it must satisfy.
const CONSUMER = `
import { startEngine, buildFlow, random, tree, logProbRows, type EngineInfo } from "clayflow";

const info: EngineInfo = await startEngine({ device: "wasm", threads: 1 });
const flow = buildFlow({ model: "realnvp", dim: 2, layers: 2, hidden: [8] });
const params = flow.init(random.key(0));
const logp: Float64Array = await logProbRows(flow, tree.ref(params), new Float32Array([0, 0, 1, -1]));
const samples = flow.sample(params, random.key(1), 3);
const shape: number[] = samples.shape;
samples.dispose();
console.log(JSON.stringify({ device: info.device, logp: [...logp], shape, resolved: import.meta.resolve("clayflow") }));
`;

// Type errors tsc must report: a name the package does not export, a wrong argument type.
const MISUSE = `
import { buildFlow, notAnExport } from "clayflow";
buildFlow({ model: "realnvp", dim: "two" });
console.log(notAnExport);
`;

test("package: the packed tarball installs into a fresh project and imports as clayflow, with types", () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-pack-"));
  try {
    const packed = JSON.parse(
      ok(run(npm, ["pack", "--json", "--pack-destination", dir], root), "npm pack"),
    );
    const entry = packed[0] as { name: string; filename: string; files: { path: string }[] };
    assert.equal(entry.name, "clayflow");
    const paths = entry.files.map((f) => f.path);
    for (const want of [
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli/main.js",
      "package.json",
      "README.md",
    ]) {
      assert.ok(paths.includes(want), `the tarball lacks ${want}`);
    }
    assert.ok(
      !paths.some((p) => p.startsWith("src/") || p.startsWith("test/") || p.startsWith("build/")),
      "the tarball ships sources or tests",
    );
    // Source maps would name src/ files the tarball does not have; the API reference is built on demand.
    assert.ok(
      !paths.some((p) => p.endsWith(".map")),
      "the tarball ships source maps of sources it does not ship",
    );
    assert.ok(
      !paths.some((p) => p.startsWith("docs/api/")),
      "the tarball ships the generated API reference",
    );
    assert.ok(paths.includes("CHANGELOG.md"), "the tarball lacks CHANGELOG.md");

    const project = join(dir, "consumer");
    ok(run("mkdir", ["-p", project], dir), "mkdir");
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
    ok(
      run(
        npm,
        [
          "install",
          "--offline",
          "--no-audit",
          "--no-fund",
          "--install-links",
          tarball,
          join(root, "node_modules/@jax-js/jax"),
        ],
        project,
      ),
      "npm install of the tarball",
    );
    assert.ok(
      existsSync(join(project, "node_modules/clayflow/dist/index.js")),
      "installed under node_modules/clayflow",
    );

    writeFileSync(
      join(project, "main.mjs"),
      CONSUMER.replace(/: EngineInfo|: Float64Array|: number\[\]|, type EngineInfo/g, ""),
    );
    const out = JSON.parse(
      ok(run(process.execPath, ["main.mjs"], project), "node main.mjs")
        .trim()
        .split("\n")
        .pop()!,
    );
    assert.equal(out.device, "wasm");
    assert.equal(out.logp.length, 2);
    assert.ok(out.logp.every(Number.isFinite), `log-densities ${out.logp}`);
    assert.deepEqual(out.shape, [3, 2]);
    assert.ok(
      out.resolved.includes("/consumer/node_modules/clayflow/dist/index.js"),
      `resolved to ${out.resolved}`,
    );

    // skipLibCheck: @jax-js/jax 0.1.25's declarations name Float16Array and WebGPU types that a
    // plain ES2022 lib lacks (docs/BROWSER.md). The consumer's own code is still fully checked.
    const flags = [
      "--strict",
      "--noEmit",
      "--skipLibCheck",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--lib",
      "es2022,dom",
    ];
    writeFileSync(join(project, "main.ts"), CONSUMER);
    ok(run(process.execPath, [tsc, ...flags, "main.ts"], project), "tsc on a consumer's program");
    writeFileSync(join(project, "misuse.ts"), MISUSE);
    const bad = run(process.execPath, [tsc, ...flags, "misuse.ts"], project);
    assert.notEqual(bad.status, 0, "tsc accepted a program that misuses the package's types");
    assert.match(bad.stdout, /has no exported member 'notAnExport'/);
    assert.match(bad.stdout, /Type 'string' is not assignable to type 'number'/);
    assert.equal(
      JSON.parse(readFileSync(join(project, "node_modules/clayflow/package.json"), "utf8")).types,
      "dist/index.d.ts",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
