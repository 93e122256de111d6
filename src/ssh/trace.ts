/**
 * FERRY_TRACE=1: one line on stderr per remote command as it ends, with its
 * host, duration and exit status, timed from the process start. For finding
 * where a slow run spends its time; off by default and costs nothing then.
 * The command is shown as a plan shows it (secrets are not logged
 * by callers that pass them on stdin).
 */
const t0 = process.hrtime.bigint();
const ms = (t: bigint) => Number(t - t0) / 1e6;

export const trace = {
  /** Set by the command line from FERRY_TRACE. */
  enabled: false,
  /** Starts timing a command; call the result with its exit code (or signal) when it ends. */
  start(host: string, command: string): (status: number | string) => void {
    const began = process.hrtime.bigint();
    return (status) => {
      const now = process.hrtime.bigint();
      const head = command.replace(/\s+/g, ' ').slice(0, 160);
      process.stderr.write(
        `[trace ${(ms(began) / 1000).toFixed(3)} s +${(ms(now) - ms(began)).toFixed(0)} ms] ${host} exit ${status}: ${head}\n`,
      );
    };
  },
};
