/** Policies ktl must reject, with the message and position it must report. Shared by the
 * parser tests and the differential test against nsjail's own parser. */
export interface BadCase {
  name: string;
  text: string;
  code: string;
  /** Substring of the message. */
  message: string;
  line?: number;
  column?: number;
  hint?: string;
  /**
   * Set where nsjail's loader (protobuf 3.21's lenient JSON reader) accepts what ktl refuses on
   * purpose; says why ktl is stricter. The differential test asserts the disagreement.
   */
  stricterThanNsjail?: string;
}

export const badCases: BadCase[] = [
  { name: 'unknown field', text: 'hostnme: "x"\n', code: 'E_UNKNOWN_FIELD', message: 'Message type "nsjail.NsJailConfig" has no field named "hostnme".', line: 1, column: 1, hint: 'did you mean "hostname"?' },
  { name: 'unknown nested field', text: 'mount {\n  dst: "/"\n  read_only: true\n}\n', code: 'E_UNKNOWN_FIELD', message: 'Message type "nsjail.MountPt" has no field named "read_only".', line: 3, column: 3 },
  { name: 'singular field twice', text: 'hostname: "a"\nhostname: "b"\n', code: 'E_DUPLICATE_FIELD', message: 'Non-repeated field "hostname" is specified multiple times.', line: 2, column: 1, hint: 'first set at 1:1' },
  { name: 'singular message twice', text: 'exec_bin { path: "/a" }\nexec_bin { path: "/b" }\n', code: 'E_DUPLICATE_FIELD', message: 'Non-repeated field "exec_bin"', line: 2, column: 1 },
  { name: 'unknown enum name', text: 'mode: ONC\n', code: 'E_UNKNOWN_ENUM', message: 'Unknown enumeration value of "ONC" for field "mode".', line: 1, column: 7, hint: 'did you mean "ONCE"?' },
  { name: 'unknown enum number', text: '\n\nlog_level: 9\n', code: 'E_UNKNOWN_ENUM', message: 'Unknown enumeration value of "9" for field "log_level".', line: 3, column: 12 },
  { name: 'enum as string', text: 'mode: "ONCE"\n', code: 'E_BAD_VALUE', message: 'Expected integer or identifier, got: "ONCE"', line: 1, column: 7 },
  { name: 'missing colon before scalar', text: 'hostname "x"\n', code: 'E_SYNTAX', message: 'Expected ":", found ""x"".', line: 1, column: 10 },
  { name: 'unquoted string', text: 'hostname: box\n', code: 'E_BAD_VALUE', message: 'Expected string, got: box', line: 1, column: 11 },
  { name: 'bad boolean word', text: 'keep_env: yes\n', code: 'E_BAD_VALUE', message: 'Invalid value for boolean field "keep_env". Value: "yes".', line: 1, column: 11 },
  { name: 'boolean 2', text: 'keep_env: 2\n', code: 'E_BAD_VALUE', message: 'Integer out of range (2)', line: 1, column: 11 },
  { name: 'negative unsigned', text: 'time_limit: -1\n', code: 'E_BAD_VALUE', message: 'Expected integer, got: -', line: 1, column: 13 },
  { name: 'uint32 overflow', text: 'time_limit: 4294967296\n', code: 'E_BAD_VALUE', message: 'Integer out of range (4294967296)', line: 1, column: 13 },
  { name: 'int32 overflow', text: 'nice_level: 2147483648\n', code: 'E_BAD_VALUE', message: 'Integer out of range (2147483648)', line: 1, column: 13 },
  { name: 'int32 underflow', text: 'nice_level: -2147483649\n', code: 'E_BAD_VALUE', message: 'Integer out of range (-2147483649)', line: 1, column: 13 },
  { name: 'uint64 overflow', text: 'rlimit_as: 18446744073709551616\n', code: 'E_BAD_VALUE', message: 'Integer out of range (18446744073709551616)', line: 1, column: 12 },
  { name: 'float for integer', text: 'time_limit: 1.5\n', code: 'E_BAD_VALUE', message: 'Expected integer, got: 1.5', line: 1, column: 13 },
  { name: 'decimal with leading zero', text: 'time_limit: 09\n', code: 'E_SYNTAX', message: 'Numbers starting with leading zero must be in octal.', line: 1, column: 13 },
  { name: 'number glued to identifier', text: 'time_limit: 10s\n', code: 'E_SYNTAX', message: 'Need space between number and identifier.', line: 1, column: 15 },
  { name: 'bare 0x', text: 'time_limit: 0x\n', code: 'E_SYNTAX', message: '"0x" must be followed by hex digits.', line: 1, column: 13 },
  { name: 'missing required dst', text: 'mount { src: "/" }\n', code: 'E_MISSING_REQUIRED', message: 'Message missing required fields: mount[0].dst', line: 1, column: 7 },
  { name: 'missing required in third mount', text: 'mount { dst: "/a" }\nmount { dst: "/b" }\nmount {\n  src: "/c"\n}\n', code: 'E_MISSING_REQUIRED', message: 'mount[2].dst', line: 3, column: 7 },
  { name: 'missing exec_bin path', text: 'exec_bin { arg: "x" }\n', code: 'E_MISSING_REQUIRED', message: 'exec_bin.path', line: 1, column: 10 },
  { name: 'unterminated string', text: 'hostname: "abc\n', code: 'E_SYNTAX', message: 'String literals cannot cross line boundaries.', line: 1, column: 11 },
  { name: 'string at end of file', text: 'hostname: "abc', code: 'E_SYNTAX', message: 'Unexpected end of string.', line: 1, column: 11 },
  { name: 'bad escape', text: 'hostname: "a\\qb"\n', code: 'E_SYNTAX', message: 'Invalid escape sequence in string literal.', line: 1, column: 13 },
  { name: 'bad hex escape', text: 'hostname: "a\\xZ"\n', code: 'E_SYNTAX', message: 'Expected hex digits for escape sequence.', line: 1, column: 13 },
  { name: 'short unicode escape', text: 'hostname: "\\u12"\n', code: 'E_SYNTAX', message: 'Expected 4 hex digits for \\u escape sequence.', line: 1, column: 12 },
  { name: 'unclosed block', text: 'mount {\n  dst: "/"\n', code: 'E_SYNTAX', message: 'Expected "}".', line: 3, column: 1, hint: 'the block opened at 1:7 is not closed' },
  { name: 'mismatched angle block', text: 'mount < dst: "/" }\n', code: 'E_SYNTAX', message: 'Expected identifier, got: }', line: 1, column: 18 },
  { name: 'stray closing brace', text: 'hostname: "a"\n}\n', code: 'E_SYNTAX', message: 'Expected identifier, got: }', line: 2, column: 1 },
  { name: 'only an opening brace', text: '{', code: 'E_SYNTAX', message: 'Expected an object key or }.', line: 1, column: 2 },
  { name: 'C++ comment', text: '// hello\nhostname: "a"\n', code: 'E_SYNTAX', message: 'Expected identifier, got: /', line: 1, column: 1 },
  { name: 'list on singular field', text: 'hostname: ["a", "b"]\n', code: 'E_BAD_VALUE', message: 'Expected string, got: [', line: 1, column: 11 },
  { name: 'list missing comma', text: 'pass_fd: [1 2]\n', code: 'E_SYNTAX', message: 'Expected ",", found "2".', line: 1, column: 13 },
  { name: 'message without braces', text: 'exec_bin: "/bin/sh"\n', code: 'E_SYNTAX', message: 'Expected "{", found ""/bin/sh"".', line: 1, column: 11 },
  { name: 'control character', text: 'hostname: "a"\u0001\n', code: 'E_SYNTAX', message: 'Invalid control characters encountered in text.', line: 1, column: 14 },
  { name: 'non-ascii outside string', text: 'hostname: "a"\né\n', code: 'E_SYNTAX', message: 'Interpreting non ascii codepoint 233.', line: 2, column: 1 },
  { name: 'field number instead of name', text: '4: "box"\n', code: 'E_SYNTAX', message: 'Expected identifier, got: 4', line: 1, column: 1 },
  { name: 'extension syntax', text: '[nsjail.x]: 1\n', code: 'E_SYNTAX', message: 'Expected identifier, got: [', line: 1, column: 1 },
  { name: 'empty file', text: '', code: 'E_EMPTY', message: 'Config file is empty.' },
  { name: 'JSON unknown field', text: '{\n  "hostnme": "x"\n}\n', code: 'E_UNKNOWN_FIELD', message: 'has no field named "hostnme"', line: 2, column: 3, hint: 'did you mean "hostname"?' },
  { name: 'JSON bool as a word', text: '{"keepEnv": "yes"}', code: 'E_BAD_VALUE', message: 'Invalid value for bool field "keep_env"', line: 1, column: 13, stricterThanNsjail: 'ProtoJSON booleans are true/false; "yes" is a protobuf 3.x quirk' },
  { name: 'JSON bool as a number', text: '{"keepEnv": 1}', code: 'E_BAD_VALUE', message: 'Invalid value for bool field "keep_env"', line: 1, column: 13 },
  { name: 'JSON duplicate key', text: '{"hostname": "a",\n "hostname": "b"}', code: 'E_DUPLICATE_FIELD', message: 'Field "hostname" is given more than once.', line: 2, column: 2, stricterThanNsjail: 'the last value silently wins: a reviewer reading the first is misled' },
  { name: 'JSON both name styles for one field', text: '{"logLevel": "INFO", "log_level": "DEBUG"}', code: 'E_DUPLICATE_FIELD', message: 'Field "log_level" is given more than once.', line: 1, column: 22, stricterThanNsjail: 'two spellings of one field, one silently wins' },
  { name: 'JSON unquoted key', text: '{hostname: "a"}', code: 'E_SYNTAX', message: 'Expected an object key or }.', line: 1, column: 2, stricterThanNsjail: 'not JSON' },
  { name: 'JSON single quotes', text: "{'hostname': 'a'}", code: 'E_SYNTAX', message: 'Expected an object key or }.', line: 1, column: 2, stricterThanNsjail: 'not JSON' },
  { name: 'JSON unknown enum number', text: '{"mode": 9}', code: 'E_UNKNOWN_ENUM', message: 'Unknown enumeration value of "9" for field "mode".', line: 1, column: 10, stricterThanNsjail: 'protobuf 3.x drops the value silently, so the policy would not mean what it says' },
  { name: 'JSON null inside a list', text: '{"envar": [null]}', code: 'E_BAD_VALUE', message: 'Invalid value for string field "envar"', line: 1, column: 12, stricterThanNsjail: 'a null element has no meaning' },
  { name: 'JSON float for integer', text: '{"timeLimit": 1.5}', code: 'E_BAD_VALUE', message: 'expected an integer', line: 1, column: 15 },
  { name: 'JSON number for string', text: '{"hostname": 5}', code: 'E_BAD_VALUE', message: 'Invalid value for string field "hostname"', line: 1, column: 14 },
  { name: 'JSON negative uint64', text: '{"rlimitAs": -1}', code: 'E_BAD_VALUE', message: 'Integer out of range (-1)', line: 1, column: 14 },
  { name: 'JSON hex string for integer', text: '{"rlimitAs": "0x10"}', code: 'E_BAD_VALUE', message: 'expected an integer', line: 1, column: 14 },
  { name: 'JSON bad base64', text: '{"mount": [{"dst": "/", "srcContent": "!!"}]}', code: 'E_BAD_VALUE', message: 'expected base64', line: 1, column: 39 },
  { name: 'JSON comment', text: '{"hostname": "a" /* c */}', code: 'E_SYNTAX', message: 'Expected , or } after an object value.', line: 1, column: 18 },
  { name: 'JSON bad enum', text: '{"mode": "ONC"}', code: 'E_UNKNOWN_ENUM', message: 'Unknown enumeration value of "ONC" for field "mode".', line: 1, column: 10 },
  { name: 'JSON trailing comma', text: '{"mode": "ONCE",}', code: 'E_SYNTAX', message: 'Expected an object key or }.', line: 1, column: 17, stricterThanNsjail: 'not JSON' },
  { name: 'JSON missing required', text: '{"mount": [{"src": "/"}]}', code: 'E_MISSING_REQUIRED', message: 'mount[0].dst', line: 1, column: 12 },
  { name: 'JSON uint32 out of range', text: '{"timeLimit": 4294967296}', code: 'E_BAD_VALUE', message: 'Integer out of range (4294967296)', line: 1, column: 15 },
  { name: 'JSON repeated not array', text: '{"envar": "A=1"}', code: 'E_BAD_VALUE', message: 'expected an array', line: 1, column: 11, stricterThanNsjail: 'ProtoJSON writes repeated fields as arrays' },
  { name: 'JSON text after document', text: '{"mode": "ONCE"} x', code: 'E_SYNTAX', message: 'Unexpected token after the JSON document.', line: 1, column: 18 },
];

/** Policies that are valid in nsjail's parser though they look odd. */
export const goodCases: { name: string; text: string; expect: Record<string, unknown> }[] = [
  { name: 'colon before message', text: 'exec_bin: { path: "/bin/true" }', expect: { exec_bin: { path: '/bin/true' } } },
  { name: 'angle brackets', text: 'exec_bin < path: "/bin/true" >', expect: { exec_bin: { path: '/bin/true' } } },
  { name: 'separators', text: 'hostname: "a"; cwd: "/x", keep_env: true', expect: { hostname: 'a', cwd: '/x', keep_env: true } },
  { name: 'adjacent strings in a list', text: 'envar: ["A=1" "B=2"]', expect: { envar: ['A=1B=2'] } },
  { name: 'list of strings', text: 'envar: ["A=1", "B=2"]\nenvar: "C=3"', expect: { envar: ['A=1', 'B=2', 'C=3'] } },
  { name: 'empty list', text: 'envar: []', expect: {} },
  { name: 'list of messages without colon', text: 'mount [{ dst: "/a" }, < dst: "/b" >]', expect: { mount: [{ dst: '/a' }, { dst: '/b' }] } },
  { name: 'adjacent strings across comments', text: 'hostname: "ab" # one\n  \'cd\' # two\n "ef"', expect: { hostname: 'abcdef' } },
  { name: 'every escape', text: 'hostname: "\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\\'\\"\\101\\x41\\u00e9\\U0001F600"', expect: { hostname: '\u0007\b\f\n\r\t\u000b\\?\'"AAé😀' } },
  { name: 'octal and hex integers', text: 'time_limit: 0x10\nmax_cpus: 017\nport: 0', expect: { time_limit: 16, max_cpus: 15, port: 0 } },
  { name: 'negative int32 and int64', text: 'nice_level: -20\ncgroup_mem_swap_max: -1\noom_score_adj: -2147483648', expect: { nice_level: -20, cgroup_mem_swap_max: -1n, oom_score_adj: -2147483648 } },
  { name: 'booleans every way', text: 'keep_env: True\nkeep_caps: t\nsilent: 1\ndaemon: False\nclone_newnet: f\nmount_proc: 0', expect: { keep_env: true, keep_caps: true, silent: true, daemon: false, clone_newnet: false, mount_proc: false } },
  { name: 'enum by number', text: 'mode: 1\nrlimit_as_type: 3', expect: { mode: 'ONCE', rlimit_as_type: 'INF' } },
  { name: 'bytes with non-UTF-8', text: 'mount { dst: "/f" src_content: "\\377\\000x" }', expect: { mount: [{ dst: '/f', src_content: Uint8Array.from([255, 0, 120]) }] } },
  { name: 'uint64 max', text: 'rlimit_as: 18446744073709551615', expect: { rlimit_as: 18446744073709551615n } },
  { name: 'comments only', text: '# nothing\n   # at all\n', expect: {} },
  { name: 'nested enums with shared names', text: 'traffic_rule { action: DROP }\nuser_net { rule4 { action: DROP direction: HOST_TO_GUEST } }', expect: { traffic_rule: [{ action: 'DROP' }], user_net: { rule4: [{ action: 'DROP', direction: 'HOST_TO_GUEST' }] } } },
  { name: 'JSON numbers as strings and exponents', text: '{"timeLimit": "12", "maxCpus": 1e1, "mode": "1"}', expect: { time_limit: 12, max_cpus: 10, mode: 'ONCE' } },
  { name: 'JSON null means unset', text: '{"keepEnv": null}', expect: {} },
  { name: 'JSON with both name styles', text: '{"hostname": "a", "timeLimit": 5, "keep_env": true, "rlimitAs": "7", "mode": 1, "mount": [{"dst": "/x", "srcContent": "aGk="}], "envar": null}', expect: { hostname: 'a', time_limit: 5, keep_env: true, rlimit_as: 7n, mode: 'ONCE', mount: [{ dst: '/x', src_content: Uint8Array.from([104, 105]) }] } },
];
