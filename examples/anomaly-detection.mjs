/**
 * Anomaly detection on a table: fit a flow to normal rows only, score new rows by their
 * negative log-likelihood, and measure how well the score separates the labelled anomalies
 * (AUROC), beside the classic Mahalanobis-distance baseline. The table is clayflow's seeded
 * synthetic one (docs/ANOMALY.md); put your own rows in `train` / `test` to use it on real data.
 *
 *   node anomaly-detection.mjs [--steps 3000] [--train-rows 20000] [--test-rows 5000]
 */
import { parseArgs } from "node:util";
import {
  auroc,
  buildFlow,
  fit,
  fitMahalanobis,
  fitStandardizer,
  logProbRows,
  mahalanobisScores,
  makeAnomalyTable,
  random,
  standardizeTransform,
  startEngine,
} from "clayflow";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "3000" },
    "train-rows": { type: "string", default: "20000" },
    "test-rows": { type: "string", default: "5000" },
  },
});

await startEngine();
const table = makeAnomalyTable(0, {
  trainRows: Number(values["train-rows"]),
  testRows: Number(values["test-rows"]),
});
const { dim } = table;
const std = fitStandardizer(table.train, dim);
const train = new Float32Array(standardizeTransform(std, table.train));
const test = new Float32Array(standardizeTransform(std, table.test));

const flow = buildFlow({ model: "nsf", dim, layers: 4, hidden: [64, 64] });
const { bestParams } = await fit(
  flow,
  flow.init(random.key(0)),
  { x: train, rows: table.trainRows },
  {
    steps: Number(values.steps),
    batchSize: 256,
    optimizer: { kind: "adam", lr: 1e-3 },
    validFraction: 0.1,
  },
);

// The score: higher = more anomalous. Split it by the labels (1 = anomaly) to measure it.
const byLabel = (scores) =>
  [0, 1].map((label) => scores.filter((_, i) => table.labels[i] === label));
const flowScores = (await logProbRows(flow, bestParams, test)).map((logp) => -logp);
const baseline = mahalanobisScores(fitMahalanobis(table.train, dim), table.test);
console.log(`${table.testRows} test rows, ${table.labels.reduce((a, v) => a + v, 0)} anomalies`);
console.log(`flow AUROC: ${auroc(...byLabel(flowScores)).toFixed(4)}`);
console.log(`Mahalanobis AUROC: ${auroc(...byLabel(baseline)).toFixed(4)}`);
