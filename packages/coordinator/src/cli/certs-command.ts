/** `alexnet certs`: a local CA and a certificate per process for mutual TLS in a test cluster. */
import type { CommandModule } from 'yargs';
import { DEFAULT_CERT_HOSTS, DEFAULT_CERT_NAMES, makeCerts } from '../certs.js';
import { UserError } from './errors.js';
import { COMMAND_LIST } from './command-list.js';

interface Args {
  out: string;
  hosts: string;
  names: string;
  days: number;
  force: boolean;
  'add-names': boolean;
}

const list = (s: string) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);

export const certsCommand: CommandModule<object, Args> = {
  ...COMMAND_LIST['certs'],
  builder: (y) =>
    y
      .usage(
        '$0 certs --out DIR [--hosts a,b,c]\n\nWrites DIR/ca.pem and DIR/ca-key.pem (the CA: keep its key off the cluster), and for each name ' +
          'NAME.pem and NAME-key.pem (ECDSA P-256, for server and client authentication, valid for every host given). ' +
          'Copy ca.pem and a process\'s own pair to its machine and start it with --tls DIR.',
      )
      .options({
        out: { type: 'string', demandOption: true, describe: 'directory to write the certificates and keys into (created)' },
        hosts: { type: 'string', default: DEFAULT_CERT_HOSTS.join(','), describe: 'DNS names and IP addresses the processes are reached at (every certificate names them all)' },
        names: { type: 'string', default: DEFAULT_CERT_NAMES.join(','), describe: 'one certificate per name (the CN): worker<tower> for workers, coordinator for the coordinator' },
        days: { type: 'number', default: 365, describe: 'validity in days' },
        force: { type: 'boolean', default: false, describe: 'replace files that exist' },
        'add-names': { type: 'boolean', default: false, describe: "sign more certificates with the CA already in DIR instead of making a new CA" },
      })
      .example('$0 certs --out certs', 'a CA and certificates for coordinator, worker0, worker1 on this machine (localhost, 127.0.0.1, ::1)')
      .example('$0 certs --out certs --hosts gpu-a,gpu-b,ctl,10.0.0.5', 'for a cluster on three machines') as never,
  handler: async (a) => {
    let r;
    try {
      r = await makeCerts({ out: a.out, hosts: list(a.hosts), names: list(a.names), days: a.days, force: a.force, reuseCa: a['add-names'] });
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const w = (l: string) => process.stdout.write(l + '\n');
    if (!a['add-names']) w(`CA: ${r.ca} (its key ${r.caKey}: only for making more certificates, keep it off the cluster)`);
    for (const f of r.files) w(`${f.name}: ${f.cert}, key ${f.key}`);
    w(`valid ${a.days} days for ${list(a.hosts).join(', ')}; start each process with --tls ${a.out}`);
  },
};
