/** Fixed names shared by the outer ktl and the jailed one. */

/** Where the gateway socket and the build spec appear inside the jail. */
export const JAIL_GATEWAY_DIR = '/run/ktl';
/** Exit status when the sandbox itself could not run ktl (EX_SOFTWARE-like, distinct). */
export const SANDBOX_FAILED_EXIT = 71;
