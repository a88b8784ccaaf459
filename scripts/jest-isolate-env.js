// Runs before every test file: ktl processes the tests start must not find a ktl-managed
// builder the developer left running (`ktl builder start` under ~/.local/state/ktl). A test
// that wants one sets KTL_STATE_DIR itself.
process.env.KTL_STATE_DIR ??= '/nonexistent/ktl-test-state';
