/**
 * `asyndgan <command>`: the command-line entry point.
 *   train    centralized pix2pix (the baseline), or one center alone with --node
 *   synth    turn masks into images with a trained generator
 *   server   the federation's generator server
 *   node     a hospital's discriminator node
 *   demo     server + 3 nodes on loopback with the embedded phantom data
 *   eval     segmentation evaluation: real vs synthetic training data
 *   experiment the paper's comparison table over seeds (src/cli/experiment.ts)
 *   complete missing-modality completion at one center
 */
import { NoAdapterError } from '../engine/index.js';
import { StartupError } from '../net/errors.js';
import { UsageError } from './options.js';

const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<void>>> = {
  train: async () => (await import('./train.js')).trainCommand,
  synth: async () => (await import('./synth.js')).synthCommand,
  server: async () => (await import('./server.js')).serverCommand,
  node: async () => (await import('./node.js')).nodeCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  eval: async () => (await import('./eval.js')).evalCommand,
  experiment: async () => (await import('./experiment.js')).experimentCommand,
  complete: async () => (await import('./complete.js')).completeCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
  provision: async () => (await import('./provision.js')).provisionCommand,
};

// The CLI drops Dawn's two adapter-limit warnings (see engine/native-stderr.ts); node processes
// that `demo` starts inherit the setting.
process.env.ASYNDGAN_QUIET_DAWN ??= '1';

const [command, ...rest] = process.argv.slice(2);
if (command && !command.startsWith('-') && !(command in COMMANDS)) {
  console.error(`asyndgan: unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')}; asyndgan --help)`);
  process.exit(2);
}
if (!command || command === '--help' || command === '-h' || !(command in COMMANDS)) {
  console.log(`usage: asyndgan <command> [options]   (asyndgan <command> --help for its options)

commands:
  train    centralized pix2pix training (or one center alone with --node)
  synth    synthesize images from masks with a trained generator
  server   run the generator server of a federation
  node     run a discriminator node (a hospital) of a federation
  demo     a whole federation on this machine: server + 3 nodes on loopback
           (server, node, demo: --algorithm fedavg-gan runs the weight-sharing baseline, docs/FEDAVG.md)
  eval     segmentation evaluation: U-Net trained on real vs synthetic images
  experiment the paper's table: real pooled, single centres, FedAvg-GAN, AsynDGAN (federated), seeds and intervals
  complete missing-modality completion: synthesize a modality a center lacks from the ones it has
  audit    privacy attacks on the federation (active, passive, membership)
  provision tokens, a private CA, server and node certificates, and the command for every site`);
  process.exit(command && !(command in COMMANDS) && command !== '--help' && command !== '-h' ? 2 : 0);
}

try {
  const run = await COMMANDS[command]!();
  await run(rest);
} catch (err) {
  if (err instanceof UsageError) {
    console.error(err.message);
    process.exit(2);
  }
  if (err instanceof StartupError) {
    // A file or port the operator can fix: one line, no stack trace.
    console.error(`asyndgan ${command}: ${err.message}`);
    process.exit(1);
  }
  if (err instanceof NoAdapterError) {
    console.error(`asyndgan: ${err.message}`);
    process.exit(3);
  }
  // One line that names the problem; the stack only when asked for (ASYNDGAN_DEBUG=1).
  if (process.env.ASYNDGAN_DEBUG === '1') console.error(`asyndgan ${command}: ${(err as Error).stack ?? err}`);
  else console.error(`asyndgan ${command}: ${oneLine(err)}`);
  process.exit(1);
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const lines = msg.split('\n').filter((l) => l.trim() !== '');
  return lines.length <= 1 ? (lines[0] ?? String(err)) : `${lines[0]} (ASYNDGAN_DEBUG=1 shows the rest)`;
}
