/** kafel policies: valid ones, and invalid ones with kafel's message and position. */
export const validKafel: { name: string; src: string }[] = [
  { name: 'default only', src: 'DEFAULT ALLOW' },
  { name: 'allow list', src: 'ALLOW { read, write, exit_group }\nDEFAULT KILL' },
  {
    name: 'every action',
    src: 'ALLOW { read } LOG { write } KILL { open } KILL_THREAD { close } DENY { newstat } KILL_PROCESS { fork } ERRNO(1) { socket } TRAP(2) { connect } TRACE(3) { bind } USER_NOTIF { listen }',
  },
  {
    name: 'policies and USE',
    src: 'POLICY a { ALLOW { read } }\nPOLICY b { USE a, ALLOW { write } }\nUSE b\nDEFAULT KILL',
  },
  {
    name: 'empty policy and empty block',
    src: 'POLICY empty {}\nUSE empty, ALLOW {}\nDEFAULT ALLOW',
  },
  {
    name: 'defines',
    src: '#define AF_INET 2\n#define AF_INET 2\nERRNO(97) { socket { family == AF_INET } }\nDEFAULT ALLOW',
  },
  {
    name: 'argument expressions',
    src: 'ALLOW { write { fd == 1 || fd == 2 }, mmap { (prot & 0x4) == 0 && flags != 0 }, socket { !(family == 2) }, read { fd >= 0, count <= 4096 }, close { fd > 2 && fd < 100 } }',
  },
  { name: 'bit or in constants', src: 'ALLOW { openat { flags == 0x1 | 0x40 } }' },
  {
    name: 'raw syscall numbers',
    src: 'ALLOW { SYSCALL[0], SYSCALL[500](a, b) { a == 1 && b != 2 } }',
  },
  { name: 'custom args on a named syscall', src: 'ALLOW { ioctl(x, y) { y == 0x5401 } }' },
  { name: 'arch guards', src: 'ALLOW { open ON x86_64, read ON { amd64, aarch64 } }' },
  {
    name: 'comments everywhere',
    src: '// line\n/* block\n comment */ ALLOW /* here */ { read } // end\n',
  },
  {
    name: 'numbers: hex octal binary negative',
    src: 'ALLOW { write { fd == 0x10 || fd == 017 || fd == 0b101 || fd == -1 } }',
  },
  {
    name: 'top-level statements without commas',
    src: 'ALLOW { read } ALLOW { write }, KILL { open }',
  },
  {
    name: 'syscall name that is a keyword-like identifier',
    src: 'ALLOW { newuname, newfstat, newstat, newlstat }',
  },
];

export interface BadKafel {
  name: string;
  src: string;
  message: string;
  line: number;
  column: number;
  hint?: string;
}

export const invalidKafel: BadKafel[] = [
  {
    name: 'libc name for uname',
    src: 'ALLOW {\n  read, uname\n}',
    message: "Undefined identifier `uname'",
    line: 2,
    column: 9,
    hint: 'newuname',
  },
  {
    name: 'typo in syscall',
    src: 'ALLOW { wrte }',
    message: "Undefined identifier `wrte'",
    line: 1,
    column: 9,
    hint: 'write',
  },
  {
    name: 'unknown argument',
    src: 'ALLOW { write { fdd == 1 } }',
    message: "Undefined identifier `fdd'",
    line: 1,
    column: 17,
    hint: "did you mean `fd'?",
  },
  {
    name: 'argument on raw syscall without declaration',
    src: 'ALLOW { SYSCALL[3] { a == 1 } }',
    message: "Undefined identifier `a'",
    line: 1,
    column: 22,
  },
  {
    name: 'unknown syscall in an unused policy',
    src: 'POLICY p { ALLOW { nope } }\nDEFAULT ALLOW',
    message: "Undefined identifier `nope'",
    line: 1,
    column: 20,
  },
  {
    name: 'USE before definition',
    src: 'USE later\nPOLICY later { ALLOW { read } }',
    message: "Undefined policy `later'",
    line: 1,
    column: 5,
  },
  {
    name: 'policy redefinition',
    src: 'POLICY a { }\nPOLICY a { }',
    message: "Redefinition of policy `a'",
    line: 2,
    column: 1,
  },
  {
    name: 'two defaults',
    src: 'DEFAULT KILL\nDEFAULT ALLOW',
    message: 'Redefinition of default action',
    line: 2,
    column: 1,
  },
  {
    name: 'define with another value',
    src: '#define X 1\n#define X 2',
    message: "Redefinition of constant `X' with different value (was: 1 is: 2)",
    line: 2,
    column: 1,
  },
  {
    name: 'errno out of range',
    src: 'ERRNO(65536) { read }',
    message: 'Errno value 65536 out of range (0-65535)',
    line: 1,
    column: 7,
  },
  {
    name: 'trace out of range',
    src: 'TRACE(70000) { read }',
    message: 'Trace value 70000 out of range (0-65535)',
    line: 1,
    column: 7,
  },
  {
    name: 'unknown action',
    src: 'ALLOWED { read }',
    message: 'expecting an action',
    line: 1,
    column: 1,
    hint: 'did you mean ALLOW?',
  },
  {
    name: 'missing brace',
    src: 'ALLOW { read',
    message: 'unexpected end of policy',
    line: 1,
    column: 13,
  },
  {
    name: 'missing comma between filters',
    src: 'ALLOW { read write }',
    message: "unexpected `write'",
    line: 1,
    column: 14,
  },
  {
    name: 'no commas inside POLICY',
    src: 'POLICY p { ALLOW { read } ALLOW { write } }',
    message: "unexpected `ALLOW'",
    line: 1,
    column: 27,
  },
  {
    name: 'expression without comparison',
    src: 'ALLOW { write { fd } }',
    message: 'expecting a comparison',
    line: 1,
    column: 20,
  },
  {
    name: 'unterminated comment',
    src: 'ALLOW { read } /* oops',
    message: 'unterminated comment',
    line: 1,
    column: 16,
  },
  {
    name: 'carriage return',
    src: 'ALLOW { read }\r\n',
    message: "unexpected char `\\r'",
    line: 1,
    column: 15,
    hint: 'Windows line endings',
  },
  {
    name: 'identifier starting with underscore',
    src: 'ALLOW { _read }',
    message: "unexpected char `_'",
    line: 1,
    column: 9,
  },
  {
    name: 'number out of range',
    src: 'ALLOW { write { fd == 18446744073709551616 } }',
    message: "number `18446744073709551616' out of range",
    line: 1,
    column: 23,
  },
  {
    name: 'unknown architecture',
    src: 'ALLOW { read ON sparc }',
    message: "Unknown architecture `sparc'",
    line: 1,
    column: 17,
  },
  {
    name: 'duplicate architecture',
    src: 'ALLOW { read ON { amd64, x86_64 } }',
    message: "Duplicate architecture `x86_64'",
    line: 1,
    column: 26,
  },
  {
    name: 'duplicate custom argument',
    src: 'ALLOW { SYSCALL[400](a, a) }',
    message: "Redefinition of argument `a'",
    line: 1,
    column: 25,
  },
  {
    name: 'too many custom arguments',
    src: 'ALLOW { SYSCALL[400](a, b, c, d, e, f, g) }',
    message: 'Too many arguments defined for syscall',
    line: 1,
    column: 40,
  },
  {
    name: 'include',
    src: '#include "other.policy"\nDEFAULT KILL',
    message: 'could not include file',
    line: 1,
    column: 1,
  },
  { name: 'empty policy', src: '\n', message: 'the policy is empty', line: 1, column: 1 },
  {
    name: 'define is a keyword',
    src: 'ALLOW { define }',
    message: "unexpected `define'",
    line: 1,
    column: 9,
  },
];
