/**
 * MooseFS, one module per role, sharing their code in modules/moosefs/:
 *
 *   moosefsMaster       mfsmaster.cfg + mfsexports.cfg, metadata initialised on first start, moosefs-master
 *   moosefsChunkserver  mfschunkserver.cfg + mfshdd.cfg, disks owned by mfs and mounted, started after their mounts,
 *                       stale instance ids of a re-created master cleared (destructive: force)
 *   moosefsMetalogger   mfsmetalogger.cfg, moosefs-metalogger
 *   moosefsCgiserv      the web UI on 9425 with moosefs-cgi's document root
 *   moosefsClient       mfsmount of a path at a mount point, by a systemd mount unit (now and at boot)
 *   moosefsFacts        read-only: mfscli's view of the cluster, optionally waiting for N chunkservers / health
 *
 * One module per role rather than one module with `role`: each has a closed schema of its own params (a
 * chunkserver's disks are not a master's param; ajv names the unknown field instead of listing the failures of
 * every branch of a oneOf), its own typed facts and output, and its own section of the reference.
 *
 * Packages are another module's work: gather fails naming the missing package (Debian's names: moosefs-master,
 * moosefs-chunkserver, moosefs-metalogger, moosefs-cgiserv + moosefs-cgi, moosefs-client + fuse3, moosefs-cli).
 * Configuration files render from templates/mfs*.hbs. A changed file is applied in the same change: reload (the
 * Debian units' ExecReload sends SIGHUP, and the daemons re-read their files) or restart when a key read only at
 * start changed. The handler form: `restart: false` plus `notify: 'reload moosefs-master'` and a handler
 * `service.task('reload moosefs-master', { name: 'moosefs-master', state: 'reloaded' })`, run once at the end of the
 * play.
 */
export { moosefsMaster, planMaster, masterGatherScript, parseMasterGather, exportLines, initMetadataCommand, isMetadataFile, DEFAULT_EXPORTS, type MoosefsMasterParams, type MoosefsMasterFacts, type MoosefsMasterOutput, type ExportEntry } from './moosefs/master.ts';
export { moosefsChunkserver, planChunkserver, chunkserverGatherScript, parseChunkserverGather, staleIds, droppedDisks, type MoosefsChunkserverParams, type MoosefsChunkserverFacts, type MoosefsChunkserverOutput } from './moosefs/chunkserver.ts';
export { moosefsMetalogger, planMetalogger, type MoosefsMetaloggerParams, type MoosefsMetaloggerFacts, type MoosefsMetaloggerOutput } from './moosefs/metalogger.ts';
export { moosefsCgiserv, planCgiserv, type MoosefsCgiservParams, type MoosefsCgiservFacts, type MoosefsCgiservOutput } from './moosefs/cgiserv.ts';
export { moosefsClient, planClient, renderMountUnit, type MoosefsClientParams, type MoosefsClientFacts, type MoosefsClientOutput } from './moosefs/client.ts';
export { moosefsFacts, factsGatherScript, parseFactsGather, mfscliCommand, type MoosefsFactsParams, type MoosefsFacts, type MoosefsWait } from './moosefs/facts.ts';
export { parseMfscli, allAtGoal, type MfscliReport, type MfsChunkserver, type MfsDisk, type MfsMasterInfo, type MfsChunkClasses, type MfsMetadataServer, type MfsDisconnected } from './moosefs/mfscli.ts';
export { parseCfg, cfgEntries, CFG_KEYS, RESTART_KEYS } from './moosefs/cfg.ts';
