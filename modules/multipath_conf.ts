/**
 * multipath_conf: /etc/multipath.conf from a typed model (defaults, blacklist, blacklist_exceptions, devices,
 * multipaths), rendered with templates/multipath.conf.hbs, checked by `multipath -t` before it replaces the file
 * (see multipath/plan.ts), then `multipathd reconfigure`; multipathd enabled and started.
 *
 * gather is one round trip and changes nothing: the file, `systemctl show multipathd`, and the maps from
 * `multipathd show maps json` when multipathd runs (`multipath -ll` when it does not answer). When multipathd
 * is stopped but its socket listens, the maps are not read: any client of the socket, `multipath -ll`
 * included, would start multipathd. The task's output lists the maps (name, WWID, dm-N, /dev/mapper/NAME,
 * paths and how many are active) for later tasks.
 *
 * Reloading: `reload: true` (the default) reconfigures multipathd in the same change as the file. The
 * handler form is `reload: false` with `notify: 'reload multipathd'` and a handler
 * `service.task('reload multipathd', { name: 'multipathd', state: 'reloaded' })` (ExecReload of
 * multipathd.service is `multipathd reconfigure`), which runs once at the end of the play.
 */
import { Command, sh } from '../lib/command.ts';
import { defineModule } from '../lib/module.ts';
import { SECTION_FUNCTION, MARK, sectionOf, splitSections } from './blockdev.ts';
import { parseFileContent, readFileCommand } from './copy.ts';
import { DEFAULTS_KEYS, DEVICE_KEYS, KEYWORDS, MULTIPATH_KEYS, OVERRIDES_KEYS, sectionSchema } from './multipath/conf.ts';
import { isActive, parseMapsJson, parseMultipathLl, type MultipathMap } from './multipath/maps.ts';
import { DEFAULT_PATH, planMultipathConf, type MultipathConfFacts, type MultipathConfParams } from './multipath/plan.ts';
import { parseSystemctlShow, showCommand } from './service.ts';

export { planMultipathConf, installCommand, blacklists, DEFAULT_PATH, type MultipathConfParams, type MultipathConfFacts } from './multipath/plan.ts';
export { renderMultipathConf, parseMultipathConf, tokenize, formatValue, confValue, type ConfSection, type MultipathConfModel } from './multipath/conf.ts';
export { parseMapsJson, parseMultipathLl, type MultipathMap, type MultipathPath, type PathGroup } from './multipath/maps.ts';

const TEXT = '^[^\\x00-\\x1f\\x7f]*$';
const regexList = (what: string) => ({ type: 'array', items: { type: 'string', minLength: 1, pattern: TEXT }, description: what });
const vendorProduct = {
  vendor: { type: 'string', minLength: 1, pattern: TEXT, description: 'Regex of the SCSI vendor (LIO-ORG for LIO targets, IET for tgt).' },
  product: { type: 'string', minLength: 1, pattern: TEXT, description: 'Regex of the SCSI product (the LIO backstore name; ".*" for all).' },
};
const blacklistSchema = (what: string) => ({
  type: 'object',
  additionalProperties: false,
  description: what,
  properties: {
    devnode: regexList('Regexes of kernel device names ("^nvme", "^sda$").'),
    wwid: regexList('Regexes of WWIDs.'),
    property: regexList('Regexes of udev property names (a device needs one to be multipathed when listed in blacklist_exceptions).'),
    protocol: regexList('Regexes of transport protocols (scsi:iscsi, scsi:fcp, nvme, ...).'),
    device: {
      type: 'array',
      description: 'Devices by vendor and product regexes (both required).',
      items: { type: 'object', additionalProperties: false, required: ['vendor', 'product'], properties: vendorProduct },
    },
  },
});

/** One round trip: the file, multipathd's unit, the maps (never through multipathd's socket when it is stopped). */
export function gatherScript(path: string): Command {
  return sh`${SECTION_FUNCTION}
read_conf() {
${readFileCommand(path)}
}
if ! command -v multipath >/dev/null 2>&1 || ! command -v multipathd >/dev/null 2>&1; then echo ${`${MARK} missing`}; exit 0; fi
sanbook_run conf read_conf
sanbook_run service ${showCommand('multipathd')}
if [ "$(systemctl is-active multipathd 2>/dev/null)" = active ]; then
  sanbook_run maps multipathd show maps json || sanbook_run ll multipath -ll
elif [ "$(systemctl is-active multipathd.socket 2>/dev/null)" != active ]; then
  sanbook_run ll multipath -ll
fi
:`;
}

export function parseGather(stdout: string, path: string): MultipathConfFacts {
  if (stdout.split('\n').includes(`${MARK} missing`)) throw new Error('multipath-tools is not installed (no multipath/multipathd): install it first');
  const sections = splitSections(stdout);
  const conf = sectionOf(sections, 'conf', 'multipath_conf');
  if (conf.exitCode !== 0) throw new Error(`cannot read ${path}: ${conf.stderr || `exit ${conf.exitCode}`}`);
  const service = sectionOf(sections, 'service', 'multipath_conf');
  if (service.exitCode !== 0) throw new Error(`systemctl show multipathd failed: ${service.stderr || `exit ${service.exitCode}`}`);
  const json = sections.find((s) => s.tag === 'maps' && s.exitCode === 0);
  const ll = sections.find((s) => s.tag === 'll' && s.exitCode === 0);
  return {
    file: parseFileContent(path, conf.stdout),
    service: parseSystemctlShow(service.stdout, 'multipathd.service'),
    maps: json ? parseMapsJson(json.stdout) : ll ? parseMultipathLl(ll.stdout) : [],
    mapsFrom: json ? 'multipathd' : ll ? 'multipath -ll' : 'none',
  };
}

/** What later tasks read: the maps, each with its /dev/mapper path and paths (the initiator playbook mounts these). */
export interface MultipathConfOutput {
  readonly path: string;
  readonly mapsFrom: MultipathConfFacts['mapsFrom'];
  readonly maps: readonly {
    readonly name: string;
    readonly wwid: string;
    readonly sysfs: string;
    readonly device: string;
    readonly paths: readonly { readonly dev: string; readonly state: string; readonly checker: string; readonly group: number }[];
    readonly activePaths: number;
  }[];
}

export function mapsOutput(maps: readonly MultipathMap[]): MultipathConfOutput['maps'] {
  return maps.map((m) => ({
    name: m.name,
    wwid: m.wwid,
    sysfs: m.sysfs,
    device: `/dev/mapper/${m.name}`,
    paths: m.paths.map((p) => ({ dev: p.dev, state: p.state, checker: p.checker, group: p.group })),
    activePaths: m.paths.filter(isActive).length,
  }));
}

const LIO_ALUA = { vendor: 'LIO-ORG', product: '.*', hardware_handler: '1 alua', prio: 'alua', path_grouping_policy: 'group_by_prio', failback: 'immediate', no_path_retry: 12 };

export const multipathConf = defineModule<MultipathConfParams, MultipathConfFacts, MultipathConfOutput>({
  name: 'multipath_conf',
  description:
    '/etc/multipath.conf from a typed model, checked with `multipath -t` before it replaces the file, then multipathd reconfigured, enabled and started; outputs the multipath maps and their paths.',
  examples: [
    {
      title: "Seed 000's chunk hosts: friendly names, LIO targets with ALUA, the local NVMe disk left out (seed 003)",
      params: {
        defaults: { user_friendly_names: true, find_multipaths: 'yes', polling_interval: 5 },
        blacklist: { devnode: ['^nvme'] },
        devices: [LIO_ALUA],
        multipaths: [{ wwid: '360014058773caba49b74f72b95652784', alias: 'data_chunk1' }],
      },
    },
    {
      title: 'The same with a handler: the file is written and checked here, multipathd reconfigured once at the end of the play',
      params: { defaults: { user_friendly_names: true, find_multipaths: 'yes' }, devices: [LIO_ALUA], reload: false },
      options: { notify: 'reload multipathd' },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: {
        type: 'string',
        pattern: '^/[^\\x00-\\x1f\\x7f]*[^/]$',
        default: DEFAULT_PATH,
        description: 'The file this task owns: /etc/multipath.conf, or a file of /etc/multipath/conf.d (ending in .conf).',
      },
      reload: {
        type: 'boolean',
        default: true,
        description: 'Run `multipathd reconfigure` (systemctl reload multipathd) when the file changed. false: notify a handler instead (see the module description).',
      },
      defaults: sectionSchema(DEFAULTS_KEYS, [], 'The defaults section: settings for every map, under those of devices and multipaths.'),
      blacklist: blacklistSchema('Devices multipath leaves alone.'),
      blacklistExceptions: blacklistSchema('The blacklist_exceptions section: devices multipathed although the blacklist matches them.'),
      devices: {
        type: 'array',
        description: 'The devices section: settings by vendor/product, over the built-in hardware table (e.g. LIO-ORG with ALUA).',
        items: sectionSchema(DEVICE_KEYS, ['vendor', 'product'], 'A device entry.', vendorProduct),
      },
      overrides: sectionSchema(
        OVERRIDES_KEYS,
        [],
        "The overrides section: settings over every device entry, the built-in hardware table's included. A device setting put in defaults loses to the table: multipath-tools 0.9.4 gives LIO-ORG no_path_retry 12 (60 s of queueing), so seed 000's defaults no_path_retry 100 never applied; put it here.",
      ),
      multipaths: {
        type: 'array',
        description: 'The multipaths section: settings and alias of one map, by WWID (multipathd show maps json: uuid).',
        items: sectionSchema(MULTIPATH_KEYS, ['wwid'], 'A multipath entry.', {
          wwid: { type: 'string', pattern: '^[A-Za-z0-9_.:-]+$', description: 'WWID of the LUN (3600140... for LIO).' },
          alias: KEYWORDS['alias'],
        }),
      },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`multipath_conf: systemd is not running on ${ctx.host} (the module enables and starts multipathd)`);
    const path = params.path ?? DEFAULT_PATH;
    const r = await conn.exec(gatherScript(path));
    if (r.exitCode !== 0) throw new Error(`reading multipath's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, path);
  },
  plan: planMultipathConf,
  output: (params, facts) => ({ path: params.path ?? DEFAULT_PATH, mapsFrom: facts.mapsFrom, maps: mapsOutput(facts.maps) }),
});
