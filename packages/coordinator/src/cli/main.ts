/** The one `alexnet` command line: every sub-command with its help text. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { paramsCommand } from './params-command.js';
import { inspectCommand, inspectSubcommands } from './inspect-command.js';
import { workerCommand } from './worker-command.js';
import { coordinatorCommand } from './coordinator-command.js';
import { launchCommand } from './launch-command.js';
import { slurmCommand } from './slurm-command.js';
import { certsCommand } from './certs-command.js';
import { summaryCommand } from './summary-command.js';
import { exportMetricsCommand } from './export-metrics-command.js';
import { exportCommand } from './export-command.js';
import { predictCommand } from './predict-command.js';
import { evaluateCommand } from './evaluate-command.js';
import { featuresCommand } from './features-command.js';
import { compareCommand } from './compare-command.js';
import { dashboardCommand } from './dashboard-command.js';
import { verifyCommand } from './verify-command.js';
import { UserError, reportAndExit } from './errors.js';
import { optionsOf } from './unknown-option.js';
import { failureLine, givenTwiceLine, missingValueLine, notANumberLine, type ParsedOptions } from './failure-line.js';
import { packageVersion } from './version.js';
import { operandsAfterDashes } from './operands.js';
import { endQuietlyOnLostOutput } from './output-gone.js';

process.on('unhandledRejection', reportAndExit);
// `alexnet summary RUN | head`: a reader gone ends a command quietly (training commands keep going: output-gone.ts)
endQuietlyOnLostOutput();

const commands = [launchCommand, workerCommand, coordinatorCommand, slurmCommand, paramsCommand, inspectCommand, summaryCommand, exportMetricsCommand, predictCommand, evaluateCommand, featuresCommand, compareCommand, dashboardCommand, exportCommand, verifyCommand, certsCommand];
/** Every command's usage ("summary <run>", "inspect kernels"), for the one-line reports of failure-line.ts. */
const usages = [...commands, ...inspectSubcommands.map((c) => ({ command: `inspect ${String(c.command)}` }))].map((c) => String(c.command));

try {
  // the command line as typed, for the one-line reports; yargs gets the words after `--` as positionals
  const argv = hideBin(process.argv);
  const operands = operandsAfterDashes(argv);
  if (argv[0] === '--') throw new UserError('name a command before --: alexnet --help lists them');
  const cli = yargs(operands.argv);
  await cli
    .scriptName('alexnet')
    .usage('$0 <command> [options]\n\nAlexNet trained as in the 2012 paper: two towers on two devices, gpu.js kernels, gRPC between them.')
    .command(launchCommand)
    .command(workerCommand)
    .command(coordinatorCommand)
    .command(slurmCommand)
    .command(paramsCommand)
    .command(inspectCommand)
    .command(summaryCommand)
    .command(exportMetricsCommand)
    .command(predictCommand)
    .command(evaluateCommand)
    .command(featuresCommand)
    .command(compareCommand)
    .command(dashboardCommand)
    .command(exportCommand)
    .command(verifyCommand)
    .command(certsCommand)
    .middleware((parsed) => {
      operands.restoreAll(parsed);
      const known = optionsOf(cli) as ParsedOptions;
      const line = missingValueLine(known, argv) ?? givenTwiceLine(known, argv) ?? notANumberLine(parsed, known, argv);
      if (line) throw new UserError(line);
    }, true)
    .demandCommand(1, 'name a command (see the list above)')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(packageVersion)
    .fail((msg, err, y) => {
      if (err) reportAndExit(err);
      const line = operands.restore(failureLine(msg, optionsOf(cli), argv, usages));
      process.stderr.write(line ? `alexnet: ${line}\n` : `${y.help()}\n\nalexnet: ${operands.restore(msg)}\n`);
      process.exit(2);
    })
    .parseAsync();
} catch (err) {
  reportAndExit(err);
}
