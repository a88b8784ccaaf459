/**
 * Shell completion scripts for ktl, generated from the command table: every topic and command
 * word, each command's flags, and the values of flags that take one of a fixed set. The
 * script is static (nothing runs ktl at completion time), so pressing tab costs no Node start.
 * Anything else (arguments, free-form flag values) completes as file names.
 */

export interface CompletionFlag {
  name: string;
  char?: string | undefined;
  summary?: string | undefined;
  /** False for boolean flags. */
  takesValue: boolean;
  options?: readonly string[] | undefined;
}

export interface CompletionCommand {
  /** oclif's id: `sandbox:policy:fmt`. */
  id: string;
  summary?: string | undefined;
  flags: readonly CompletionFlag[];
  /** The values of its first argument, when it takes one of a fixed set. */
  argOptions?: readonly string[] | undefined;
}

export interface CompletionModel {
  bin: string;
  commands: readonly CompletionCommand[];
  topics: readonly { name: string; description?: string | undefined }[];
}

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

const WORD = /^[A-Za-z0-9][A-Za-z0-9_.,:@%+=/-]*$/;

/** Single-quoted for sh. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const firstLine = (s: string | undefined) => (s ?? '').split('\n')[0]!.trim();

/** The words that may follow each command path (`""`, `sandbox`, `sandbox:policy`). */
function children(model: CompletionModel): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const add = (id: string, summary: string) => {
    const parts = id.split(':');
    for (let i = 0; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(':');
      const word = parts[i]!;
      if (!out.has(parent)) out.set(parent, new Map());
      const words = out.get(parent)!;
      const isLeaf = i === parts.length - 1;
      if (!words.has(word) || (isLeaf && summary)) words.set(word, isLeaf ? summary : '');
    }
  };
  for (const t of model.topics) add(t.name, firstLine(t.description));
  for (const c of model.commands) add(c.id, firstLine(c.summary));
  return out;
}

function flagWords(c: CompletionCommand): string[] {
  const words = ['--help'];
  for (const f of c.flags) {
    words.push(`--${f.name}`);
    if (f.char) words.push(`-${f.char}`);
  }
  return words.filter((w) => WORD.test(w.replace(/^-+/, '')));
}

/** `case` arms: `cmd "--flag"` / `cmd "-c"` → the flag's fixed values. */
function valueArms(model: CompletionModel): [string, string][] {
  const arms: [string, string][] = [];
  for (const c of model.commands) {
    for (const f of c.flags) {
      const values = (f.options ?? []).filter((v) => WORD.test(v));
      if (!f.takesValue || values.length === 0) continue;
      arms.push([`${c.id} --${f.name}`, values.join(' ')]);
      if (f.char) arms.push([`${c.id} -${f.char}`, values.join(' ')]);
    }
  }
  return arms;
}

/** The shell functions both scripts share (POSIX `case`, which zsh reads too). */
function tables(model: CompletionModel, fn: string, describe: boolean): string {
  const kids = children(model);
  const wordArms = [...kids].map(([path, words]) => {
    const list = [...words.keys()].sort().join(' ');
    return `    ${q(path)}) echo ${q(list)} ;;`;
  });
  const flagArms = model.commands.map(
    (c) => `    ${q(c.id)}) echo ${q(flagWords(c).join(' '))} ;;`,
  );
  const values = valueArms(model).map(([k, v]) => `    ${q(k)}) echo ${q(v)} ;;`);
  const args = model.commands
    .map((c) => [c.id, (c.argOptions ?? []).filter((v) => WORD.test(v))] as const)
    .filter(([, v]) => v.length > 0)
    .map(([id, v]) => `    ${q(id)}) echo ${q(v.join(' '))} ;;`);
  const out = [
    `# The words that may follow a command path (its parts joined by ':').`,
    `${fn}_words() {`,
    '  case "$1" in',
    ...wordArms,
    '  esac',
    '}',
    `# A command's flags.`,
    `${fn}_flags() {`,
    '  case "$1" in',
    ...flagArms,
    '  esac',
    '}',
    `# The values of a command's first argument, where it takes one of a fixed set.`,
    `${fn}_args() {`,
    '  case "$1" in',
    ...args,
    '  esac',
    '}',
    `# The values a flag takes, for flags with a fixed set: "$1 $2" is "command --flag".`,
    `${fn}_values() {`,
    '  case "$1 $2" in',
    ...values,
    '  esac',
    '}',
  ];
  if (describe) {
    const described = [...kids].map(([path, words]) => {
      const items = [...words]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([w, s]) => q(s ? `${w}:${s.replace(/:/g, '\\:')}` : w));
      return `    ${q(path)}) reply=(${items.join(' ')}) ;;`;
    });
    out.push(
      `# The same words with what each does, for _describe.`,
      `${fn}_described() {`,
      '  reply=()',
      '  case "$1" in',
      ...described,
      '  esac',
      '}',
    );
  }
  return out.join('\n');
}

function bash(model: CompletionModel): string {
  const fn = `_${model.bin.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `# ${model.bin} completion for bash. Load it in this shell with
#   source <(${model.bin} completion bash)
# or for every shell: ${model.bin} completion bash > ~/.local/share/bash-completion/completions/${model.bin}
${tables(model, fn, false)}
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd="" i=1 w help=0 flag next
  # The command path: the leading words that name a topic or command ('help' first: its subject).
  if [[ \${COMP_WORDS[1]} == help && COMP_CWORD -gt 1 ]]; then help=1; i=2; fi
  for ((; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ " $(${fn}_words "$cmd") " == *" $w "* ]]; then cmd=\${cmd:+$cmd:}$w; else break; fi
  done
  next=$(${fn}_words "$cmd")
  if ((help)); then
    if ((i == COMP_CWORD)); then COMPREPLY=($(compgen -W "$next" -- "$cur")); fi
    return
  fi
  ((i == COMP_CWORD)) && next="$next $(${fn}_args "$cmd")"
  next=\${next# }
  # A flag's value: after "--flag" or "--flag=" (bash splits at '=').
  flag=\${COMP_WORDS[COMP_CWORD-1]}
  [[ $flag == = ]] && flag=\${COMP_WORDS[COMP_CWORD-2]}
  [[ $cur == = ]] && { flag=\${COMP_WORDS[COMP_CWORD-1]}; cur=; }
  local values
  values=$(${fn}_values "$cmd" "$flag")
  if [[ -n $values ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); return; fi
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$(${fn}_flags "$cmd")" -- "$cur")); return; fi
  if [[ -n \${next// } && i -eq COMP_CWORD ]]; then COMPREPLY=($(compgen -W "$next" -- "$cur")); return; fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -o bashdefault -F ${fn} ${model.bin}
`;
}

function zsh(model: CompletionModel): string {
  const fn = `_${model.bin.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `#compdef ${model.bin}
# ${model.bin} completion for zsh. Load it in this shell with
#   source <(${model.bin} completion zsh)
# or for every shell: ${model.bin} completion zsh > "\${fpath[1]}/${fn}" (then restart zsh)
${tables(model, fn, true)}
${fn}() {
  # Not 'path' (zsh ties it to PATH) nor 'words' (the line being completed).
  local cur=\${words[CURRENT]} cmd="" i=2 w help=0 flag next
  local -a reply
  if [[ \${words[2]} == help && CURRENT -gt 2 ]]; then help=1; i=3; fi
  for ((; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ " $(${fn}_words "$cmd") " == *" $w "* ]]; then cmd=\${cmd:+$cmd:}$w; else break; fi
  done
  next=$(${fn}_words "$cmd")
  if ((help)); then
    if ((i == CURRENT)); then ${fn}_described "$cmd"; _describe -t commands command reply; fi
    return
  fi
  flag=\${words[CURRENT-1]}
  if [[ $cur == --*=* ]]; then flag=\${cur%%=*}; compset -P '*='; cur=\${cur#*=}; fi
  local values
  values=$(${fn}_values "$cmd" "$flag")
  if [[ -n $values ]]; then compadd -- \${=values}; return; fi
  if [[ $cur == -* ]]; then compadd -- \${=$(${fn}_flags "$cmd")}; return; fi
  if [[ -n $next && i -eq CURRENT ]]; then
    ${fn}_described "$cmd"
    _describe -t commands command reply
    return
  fi
  local args
  args=$(${fn}_args "$cmd")
  if [[ -n $args && i -eq CURRENT ]]; then compadd -- \${=args}; return; fi
  _files
}
if [[ $funcstack[1] == ${fn} ]]; then ${fn} "$@"; else compdef ${fn} ${model.bin}; fi
`;
}

export function completionScript(shell: Shell, model: CompletionModel): string {
  return shell === 'bash' ? bash(model) : zsh(model);
}
