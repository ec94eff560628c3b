/**
 * Reads Dockerfiles and .dockerignore files well enough to check them without
 * a container engine: instructions (with line continuations and ARG defaults
 * substituted), stages, COPY sources, entrypoints, labels, users, and whether
 * the build context admits a path.
 */

export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line the instruction starts on. */
  line: number;
}

export function parseInstructions(text: string): Instruction[] {
  const lines = text.split("\n");
  const instructions: Instruction[] = [];
  let current: { parts: string[]; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    if (current === undefined && (trimmed === "" || trimmed.startsWith("#"))) return;
    if (current !== undefined && trimmed.startsWith("#")) return; // comment inside a continuation
    const continues = trimmed.endsWith("\\");
    const part = continues ? trimmed.slice(0, -1).trim() : trimmed;
    if (current === undefined) current = { parts: [], line: index + 1 };
    if (part !== "") current.parts.push(part);
    if (!continues) {
      const joined = current.parts.join(" ");
      const space = joined.search(/\s/);
      instructions.push({
        keyword: (space < 0 ? joined : joined.slice(0, space)).toUpperCase(),
        args: space < 0 ? "" : joined.slice(space + 1).trim(),
        line: current.line,
      });
      current = undefined;
    }
  });
  if (current !== undefined) throw new Error(`line ${current.line}: continuation never ends`);
  return instructions;
}

/** Replaces `${NAME}` and `$NAME` with values from `args`; unknown names stay as written. */
export function substitute(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced, bare) => {
    const value = args[braced ?? bare];
    return value ?? whole;
  });
}

/** Splits `KEY=VALUE KEY2="VALUE 2"` (LABEL, ARG, ENV syntax) into pairs. */
export function parseKeyValues(text: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  const pattern = /([\w.\-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;
  for (const match of text.matchAll(pattern)) {
    pairs[match[1]] = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3];
  }
  return pairs;
}

export interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
  /** ARG defaults visible in this stage (global ones must be re-declared to be seen). */
  args: Record<string, string>;
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of parseInstructions(text)) {
    const stage = stages.at(-1);
    if (instruction.keyword === "FROM") {
      const words = substitute(instruction.args, globalArgs).split(/\s+/)
        .filter((w) => !w.startsWith("--"));
      const as = words.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({
        image: words[0],
        name: as >= 0 ? words[as + 1] : undefined,
        instructions: [],
        args: {},
      });
    } else if (stage === undefined) {
      if (instruction.keyword !== "ARG") {
        throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
      }
      const [name, value = ""] = instruction.args.split("=", 2);
      globalArgs[name.trim()] = value.replace(/^"|"$/g, "");
    } else {
      if (instruction.keyword === "ARG") {
        const [name, value] = instruction.args.split("=", 2);
        stage.args[name.trim()] = value !== undefined
          ? value.replace(/^"|"$/g, "")
          : globalArgs[name.trim()] ?? "";
      }
      stage.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

export interface Copy {
  from?: string;
  sources: string[];
  destination: string;
  line: number;
}

export function copiesOf(stage: Stage): Copy[] {
  return stage.instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD").map(
    (instruction) => {
      let text = instruction.args;
      let from: string | undefined;
      while (text.startsWith("--")) {
        const [flag, ...rest] = text.split(/\s+/);
        if (flag.startsWith("--from=")) from = flag.slice("--from=".length);
        text = rest.join(" ");
      }
      const words = text.startsWith("[") ? JSON.parse(text) as string[] : text.split(/\s+/);
      return {
        from,
        sources: words.slice(0, -1),
        destination: words.at(-1)!,
        line: instruction.line,
      };
    },
  );
}

/** The exec-form ENTRYPOINT of a stage (the last one wins). */
export function entrypointOf(stage: Stage): string[] | undefined {
  const last = stage.instructions.filter((i) => i.keyword === "ENTRYPOINT").at(-1);
  if (last === undefined) return undefined;
  if (!last.args.startsWith("[")) {
    throw new Error(`line ${last.line}: ENTRYPOINT must use the exec (JSON) form`);
  }
  return JSON.parse(last.args);
}

export function userOf(stage: Stage): string | undefined {
  return stage.instructions.filter((i) => i.keyword === "USER").at(-1)?.args;
}

export function labelsOf(stage: Stage): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const instruction of stage.instructions.filter((i) => i.keyword === "LABEL")) {
    for (const [key, value] of Object.entries(parseKeyValues(instruction.args))) {
      labels[key] = substitute(value, stage.args);
    }
  }
  return labels;
}

export function runsOf(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
}

function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      if (pattern[i + 2] === "/") {
        source += "(?:.*/)?";
        i += 2;
      } else {
        source += ".*";
        i += 1;
      }
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

export interface IgnoreRule {
  exclude: boolean;
  pattern: RegExp;
  text: string;
}

/** Reads a .dockerignore: one pattern a line, `!` re-includes, the last match wins. */
export function parseDockerignore(text: string): IgnoreRule[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
    .map((line) => {
      const exclude = !line.startsWith("!");
      const body = (exclude ? line : line.slice(1)).replace(/^\/+/, "").replace(/\/+$/, "");
      return { exclude, pattern: globToRegExp(body), text: line };
    });
}

/**
 * Whether the build context holds `path` (relative, `/`-separated). A pattern
 * that matches a parent directory applies to everything below it.
 */
export function inBuildContext(rules: IgnoreRule[], path: string): boolean {
  const parts = path.replace(/\/+$/, "").split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let included = true;
  for (const rule of rules) {
    if (candidates.some((c) => rule.pattern.test(c))) included = !rule.exclude;
  }
  return included;
}

/** Splits a shell-like command line into words, honouring single and double quotes. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < command.length) word += command[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} in: ${command}`);
  if (word !== undefined) words.push(word);
  return words;
}
