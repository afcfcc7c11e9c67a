/** A handler module that exports no function: `--handler` must refuse it. */
export const nothing = 1;
