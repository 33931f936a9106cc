/** The parsed YAML text of otto.yaml, kept so every problem can point at its `file:line:column`. */
import { Composer, Document, isMap, isScalar, isSeq, LineCounter, Parser, YAMLParseError, type CST, type Node } from 'yaml';
import { MAX_NESTING } from './limits.js';

export type ConfigPath = readonly (string | number)[];

/** One problem with the file, before it is turned into a line of text. */
export interface Problem {
  path: ConfigPath;
  message: string;
  /** Point at the key rather than its value (unknown keys). */
  atKey?: boolean;
  /** Exact offset in the text when known better than the node's start (a `${VAR}` inside a string). */
  offset?: number;
}

/** A problem rendered as `file:line:column path: message`, with its position kept for sorting. */
export interface Located {
  line: number;
  column: number;
  text: string;
}

export class ConfigSource {
  readonly document: Document;
  private readonly lines = new LineCounter();
  /** A file nested too deep is never composed: yaml would build it recursively and overflow the stack. */
  private readonly tooDeep?: Located;

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    // yaml's parser is iterative; its composer recursive. So: tokens first, their depth checked, then the document.
    const tokens = [...new Parser(this.lines.addNewLine).parse(text)];
    const deep = tokens.reduce<number | undefined>((found, token) => found ?? offsetTooDeep(token, 0), undefined);
    if (deep !== undefined) {
      this.tooDeep = this.locate(deep, `nested deeper than ${MAX_NESTING} levels; nothing in otto.yaml is nested more than a few`);
      this.document = new Document(null);
      return;
    }
    this.document = composeOne(tokens, text.length);
  }

  /** YAML syntax errors, at most one per line: one mistake often makes the parser complain several times. */
  syntaxErrors(): Located[] {
    if (this.tooDeep) return [this.tooDeep];
    const byLine = new Map<number, Located>();
    for (const error of this.document.errors) {
      // Indentation errors point at the start of the line; the misplaced text is more useful.
      const offset = error.pos[0] + (/^[ \t]*/.exec(this.text.slice(error.pos[0]))?.[0].length ?? 0);
      const located = this.locate(offset, error.message.split('\n')[0]!);
      if (!byLine.has(located.line)) byLine.set(located.line, located);
    }
    return [...byLine.values()];
  }

  render(problem: Problem): Located {
    const offset = problem.offset ?? this.offsetOf(problem.path, problem.atKey);
    const where = formatPath(problem.path);
    return this.locate(offset, where ? `${where}: ${problem.message}` : problem.message);
  }

  /** `file:line:column` of the node at `path`. */
  where(path: ConfigPath): string {
    const { line, col } = this.lines.linePos(this.offsetOf(path));
    return `${this.file}:${line}:${col}`;
  }

  /** Start of the node at `path`; of its nearest existing ancestor when the path is missing from the file. */
  private offsetOf(path: ConfigPath, atKey = false): number {
    let node: unknown = this.document.contents;
    let offset = rangeStart(node) ?? 0;
    for (const [index, segment] of path.entries()) {
      let child: unknown;
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
        if (!pair) break;
        const keyOffset = rangeStart(pair.key);
        if (atKey && index === path.length - 1 && keyOffset !== undefined) return keyOffset;
        child = pair.value;
        // `key:` with nothing after it gets an empty null scalar; the key is the place to point at.
        offset = (isEmptyScalar(child) ? undefined : rangeStart(child)) ?? keyOffset ?? offset;
      } else if (isSeq(node) && typeof segment === 'number') {
        child = node.items[segment];
        offset = rangeStart(child) ?? offset;
      } else {
        break;
      }
      if (child === undefined || child === null) break;
      node = child;
    }
    return offset;
  }

  private locate(offset: number, message: string): Located {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col, text: `${this.file}:${line}:${col} ${message}` };
  }
}

/** The one document of the file, as yaml's parseDocument composes it; a second one is an error. */
function composeOne(tokens: CST.Token[], length: number): Document {
  // prettyErrors off: yaml would append its own "at line X, column Y" and a code excerpt.
  const composer = new Composer({ prettyErrors: false });
  let document: Document | undefined;
  for (const next of composer.compose(tokens, true, length)) {
    if (!document) {
      document = next;
      continue;
    }
    const message = 'a second YAML document starts here ("---"); otto.yaml is one document';
    document.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', message));
    break;
  }
  return document!;
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

/**
 * Where the first collection nested deeper than MAX_NESTING starts, if any. Recurses at most that deep,
 * so a file of 100,000 "[" costs a scan of its tokens, not a stack overflow.
 */
function offsetTooDeep(token: CST.Token | undefined, depth: number): number | undefined {
  if (!token) return undefined;
  if (token.type === 'document') return offsetTooDeep(token.value, depth);
  if (!COLLECTIONS.has(token.type)) return undefined;
  if (depth + 1 > MAX_NESTING) return token.offset;
  for (const item of (token as CST.BlockMap | CST.BlockSequence | CST.FlowCollection).items) {
    const found = offsetTooDeep((item as { key?: CST.Token | null }).key ?? undefined, depth + 1) ?? offsetTooDeep(item.value, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  return (node as Partial<Node> | null | undefined)?.range?.[0];
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];
}

/** `services[0].environment.TOKEN`; keys that are not plain words are quoted: `labels["com.example/x"]`. */
export function formatPath(path: ConfigPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) text += text ? `.${segment}` : segment;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
