/**
 * A small, strict command-line parser: declared options only, typed values,
 * generated --help. Unknown options and bad values are user errors.
 *
 * Why not Node's util.parseArgs: it has string and boolean options only (no int / number
 * checks, required options, help text or "was this typed" for --resume), so a wrapper would
 * keep all of this file but the 25-line token loop; and in strict mode it refuses a negative
 * number as a value (`--lr -0.5`, `--threshold -3`: "argument is ambiguous") and `--flag=false`,
 * and its messages do not name the command. Both behaviours are tested (test/cli-parts.test.ts).
 */

export class UsageError extends Error {}

export type OptionType = "string" | "int" | "number" | "boolean";

export interface OptionSpec {
  type: OptionType;
  help: string;
  default?: string | number | boolean;
  /** Placeholder in the help text, e.g. DIR. */
  value?: string;
  required?: boolean;
  short?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  examples?: string[];
}

export type ParsedOptions = Record<string, string | number | boolean | undefined>;

/** A sub-command of `clayflow`: its declared options and what it does. */
export interface Command {
  spec: CommandSpec;
  /**
   * Runs the command; resolves to its exit code (nothing means 0). A command whose verdict is a
   * failure (doctor's "broken") returns non-zero rather than setting process.exitCode, which
   * main would overwrite.
   */
  run(options: ParsedOptions): Promise<number | void>;
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "boolean" ? "" : ` ${o.value ?? o.type.toUpperCase()}`}`;
    const extra = o.required
      ? " (required)"
      : o.default !== undefined
        ? ` (default: ${o.default})`
        : "";
    return [flag, o.help + extra] as const;
  });
  rows.push(["-h, --help", "show this help"], ["--verbose", "show stack traces on errors"]);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const lines = [`${spec.summary}`, "", `usage: ${spec.usage}`, "", "options:"];
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(width)}${h}`);
  if (spec.examples?.length) lines.push("", "examples:", ...spec.examples.map((e) => `  ${e}`));
  return lines.join("\n");
}

function convert(name: string, o: OptionSpec, raw: string): string | number | boolean {
  if (o.type === "string") return raw;
  if (o.type === "boolean") {
    if (raw === "true") return true;
    if (raw === "false") return false;
    throw new UsageError(`--${name} takes no value (or true/false), got "${raw}"`);
  }
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got "${raw}"`);
  if (o.type === "int" && !Number.isInteger(n))
    throw new UsageError(`--${name} must be an integer, got "${raw}"`);
  return n;
}

const given = new WeakMap<ParsedOptions, Set<string>>();

/** Whether the user typed `--name` (rather than it taking its default). */
export function wasGiven(options: ParsedOptions, name: string): boolean {
  return given.get(options)?.has(name) ?? false;
}

/** Parse `argv` (after the command name) against `spec`. Returns null when help was asked for. */
export function parseArgs(spec: CommandSpec, argv: string[]): ParsedOptions | null {
  const out: ParsedOptions = {};
  const byShort = new Map(
    Object.entries(spec.options)
      .filter(([, o]) => o.short)
      .map(([n, o]) => [o.short!, n]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") return null;
    if (arg === "--verbose") continue;
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (/^-[a-zA-Z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (!name) throw new UsageError(`unknown option ${arg} (see --help)`);
    } else {
      throw new UsageError(`unexpected argument "${arg}" (options start with --; see --help)`);
    }
    const o = spec.options[name];
    if (!o) throw new UsageError(`unknown option --${name} for "${spec.name}" (see --help)`);
    if (o.type === "boolean" && inline === undefined) {
      out[name] = true;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    out[name] = convert(name, o, raw);
  }
  given.set(out, new Set(Object.keys(out)));
  for (const [name, o] of Object.entries(spec.options)) {
    if (out[name] === undefined && o.default !== undefined) out[name] = o.default;
    if (out[name] === undefined && o.required)
      throw new UsageError(`--${name} is required (see --help)`);
  }
  return out;
}
