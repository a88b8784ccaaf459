/**
 * A small terminal model for tests of the tty progress: it interprets what the renderer emits
 * (printable text, CR, LF (as CR LF, like a tty's onlcr), cursor up/down/left/right, erase line/display, SGR colors ignored)
 * on a screen of `rows` x `cols` with deferred wrap at the last column and scrolling into a
 * scrollback. Cursor-up stops at the screen's top as a real terminal's does, so a frame taller
 * than the screen shows up as garbage. Anything else (another escape sequence, a raw control
 * character) throws: the renderer must never emit it.
 */
export class Screen {
  /** Scrollback and screen, one array of characters per line. */
  private readonly buf: string[][] = [[]];
  /** Index in buf of the screen's first line. */
  private top = 0;
  private row = 0;
  private col = 0;
  private wrapNext = false;

  /** onlcr: LF also returns the carriage, as a tty's output processing does by default. */
  constructor(
    readonly cols: number,
    readonly rows: number,
    private readonly onlcr = true,
  ) {}

  feed(data: string): this {
    let i = 0;
    while (i < data.length) {
      const ch = data[i] as string;
      if (ch === '\x1b') {
        const m = /^\x1b\[(\??)([0-9;]*)([A-Za-z])/.exec(data.slice(i, i + 32));
        if (!m)
          throw new Error(`unexpected escape at ${i}: ${JSON.stringify(data.slice(i, i + 12))}`);
        this.csi(m[1] ?? '', m[2] ?? '', m[3] ?? '');
        i += m[0].length;
        continue;
      }
      const code = ch.codePointAt(0) ?? 0;
      if (ch === '\r') {
        this.col = 0;
        this.wrapNext = false;
      } else if (ch === '\n') {
        if (this.onlcr) this.col = 0;
        this.lineFeed();
      } else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) {
        throw new Error(`unexpected control character 0x${code.toString(16)} at ${i}`);
      } else {
        this.put(ch);
      }
      i++;
    }
    return this;
  }

  /** Every line (scrollback and screen), trailing blanks trimmed, trailing empty lines dropped. */
  text(): string {
    const lines = this.buf.map((l) => l.join('').replace(/\s+$/, ''));
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n');
  }

  /** The lines on screen now. */
  screen(): string[] {
    const out: string[] = [];
    for (let r = this.top; r < this.top + this.rows; r++) {
      out.push((this.buf[r] ?? []).join('').replace(/\s+$/, ''));
    }
    return out;
  }

  private line(): string[] {
    while (this.buf.length <= this.row) this.buf.push([]);
    return this.buf[this.row] as string[];
  }

  private lineFeed(): void {
    this.row++;
    this.wrapNext = false;
    if (this.row >= this.top + this.rows) this.top = this.row - this.rows + 1;
    this.line();
  }

  private put(ch: string): void {
    if (this.wrapNext) {
      this.col = 0;
      this.lineFeed();
    }
    const l = this.line();
    while (l.length < this.col) l.push(' ');
    l[this.col] = ch;
    if (this.col === this.cols - 1) this.wrapNext = true;
    else this.col++;
  }

  private csi(priv: string, params: string, final: string): void {
    const n = Math.max(1, Number(params.split(';')[0] || '1'));
    this.wrapNext = false;
    if (priv === '?') {
      if (final !== 'h' && final !== 'l') throw new Error(`unexpected CSI ?${params}${final}`);
      return;
    }
    switch (final) {
      case 'A':
        this.row = Math.max(this.top, this.row - n);
        break;
      case 'B':
        this.row = Math.min(this.top + this.rows - 1, this.row + n);
        this.line();
        break;
      case 'C':
        this.col = Math.min(this.cols - 1, this.col + n);
        break;
      case 'D':
        this.col = Math.max(0, this.col - n);
        break;
      case 'K': {
        const l = this.line();
        const mode = Number(params || '0');
        if (mode === 0) l.splice(this.col);
        else if (mode === 1) for (let c = 0; c <= this.col && c < l.length; c++) l[c] = ' ';
        else l.splice(0);
        break;
      }
      case 'J': {
        const mode = Number(params || '0');
        if (mode !== 0) throw new Error(`unexpected CSI ${params}J`);
        this.line().splice(this.col);
        this.buf.splice(this.row + 1);
        break;
      }
      case 'm':
        break;
      default:
        throw new Error(`unexpected CSI ${params}${final}`);
    }
  }
}

/** Timings made stable: `1.2s` → `N.Ns`, and the padding before a right-aligned one. */
export function stripTimings(text: string): string {
  return text.replace(/ +\d+\.\ds$/gm, ' N.Ns').replace(/\d+\.\ds/g, 'N.Ns');
}
