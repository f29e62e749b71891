/** The one `alexnet` command line: every sub-command with its help text. */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError, reportAndExit } from './errors.js';
import { optionsOf } from './unknown-option.js';
import { failureLine, givenTwiceLine, missingValueLine, negatedValueLine, notANumberLine, type ParsedOptions } from './failure-line.js';
import { packageVersion } from './version.js';
import { operandsAfterDashes } from './operands.js';
import { endQuietlyOnLostOutput } from './output-gone.js';
import { COMMAND_LIST, INSPECT_SUBCOMMANDS, type CommandName } from './command-list.js';

process.on('unhandledRejection', reportAndExit);
// `alexnet summary RUN | head`: a reader gone ends a command quietly (training commands keep going: output-gone.ts)
endQuietlyOnLostOutput();

/** A loaded command: its usage strings ("summary <run>", with inspect's sub-commands) and how it joins the parser. */
interface Loaded {
  usages: string[];
  register(y: Argv): void;
}

/** Each module types its own options: the command is kept behind `register`. */
function loaded<A>(command: CommandModule<object, A>, more: string[] = []): Loaded {
  return { usages: [String(command.command), ...more], register: (y) => void y.command(command) };
}

/**
 * Each command's module, loaded when the command line names it: a command pays only for what it uses (the
 * kernels, gRPC, the data pipeline), not for every command's. In the order `alexnet --help` lists them;
 * `usages`: the command's usage strings beyond its own (inspect's sub-commands), for failure-line.ts.
 */
const COMMANDS: Record<CommandName, () => Promise<Loaded>> = {
  launch: async () => loaded((await import('./launch-command.js')).launchCommand),
  worker: async () => loaded((await import('./worker-command.js')).workerCommand),
  coordinator: async () => loaded((await import('./coordinator-command.js')).coordinatorCommand),
  slurm: async () => loaded((await import('./slurm-command.js')).slurmCommand),
  params: async () => loaded((await import('./params-command.js')).paramsCommand),
  inspect: async () => {
    const m = await import('./inspect-command.js');
    return loaded(m.inspectCommand, m.inspectSubcommands.map((c) => `inspect ${String(c.command)}`));
  },
  summary: async () => loaded((await import('./summary-command.js')).summaryCommand),
  'export-metrics': async () => loaded((await import('./export-metrics-command.js')).exportMetricsCommand),
  predict: async () => loaded((await import('./predict-command.js')).predictCommand),
  evaluate: async () => loaded((await import('./evaluate-command.js')).evaluateCommand),
  features: async () => loaded((await import('./features-command.js')).featuresCommand),
  compare: async () => loaded((await import('./compare-command.js')).compareCommand),
  dashboard: async () => loaded((await import('./dashboard-command.js')).dashboardCommand),
  export: async () => loaded((await import('./export-command.js')).exportCommand),
  verify: async () => loaded((await import('./verify-command.js')).verifyCommand),
  certs: async () => loaded((await import('./certs-command.js')).certsCommand),
};

/**
 * The commands to load: the one the line names; every one when a command's name comes after an option
 * (`alexnet --preset tiny launch`); else none, each listed by its usage and description alone (the list of
 * commands, a mistyped name, no name: `alexnet --help` answers without loading the kernels or gRPC).
 */
async function commandsFor(argv: readonly string[]): Promise<Loaded[]> {
  const named = argv[0];
  if (named !== undefined && isCommand(named)) return [await COMMANDS[named]()];
  if (argv.some(isCommand)) return Promise.all(Object.values(COMMANDS).map((load) => load()));
  return (Object.keys(COMMANDS) as CommandName[]).map(listed);
}

const isCommand = (w: string): w is CommandName => Object.hasOwn(COMMANDS, w);

/** A command as `alexnet --help` lists it, its module not loaded (commandsFor: only when the line names no command). */
function listed(name: CommandName): Loaded {
  const { command, describe } = COMMAND_LIST[name];
  const more = name === 'inspect' ? INSPECT_SUBCOMMANDS.map((c) => `inspect ${c}`) : [];
  return {
    usages: [command, ...more],
    register: (y) =>
      void y.command(command, describe, {}, () => {
        throw new Error(`the ${name} command was listed but not loaded`);
      }),
  };
}

try {
  // the command line as typed, for the one-line reports; yargs gets the words after `--` as positionals
  const argv = hideBin(process.argv);
  const operands = operandsAfterDashes(argv);
  if (argv[0] === '--') throw new UserError('name a command before --: alexnet --help lists them');
  const commands = await commandsFor(argv);
  /** Every loaded command's usage ("summary <run>", "inspect kernels"), for the one-line reports of failure-line.ts. */
  const usages = commands.flatMap((c) => c.usages);
  const cli = yargs(operands.argv);
  for (const c of commands) c.register(cli);
  await cli
    .scriptName('alexnet')
    .usage('$0 <command> [options]\n\nAlexNet trained as in the 2012 paper: two towers on two devices, gpu.js kernels, gRPC between them.')
    .middleware((parsed) => {
      operands.restoreAll(parsed);
      const known = optionsOf(cli) as ParsedOptions;
      const line = missingValueLine(known, argv) ?? givenTwiceLine(known, argv) ?? negatedValueLine(known, argv) ?? notANumberLine(parsed, known, argv);
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
