/** The exit code a shell reports for a process ended by `signal`: 128 + its number (SIGHUP 129, SIGINT 130, SIGTERM 143). */
import os from 'node:os';

export const signalExitCode = (signal: NodeJS.Signals): number => 128 + os.constants.signals[signal];
