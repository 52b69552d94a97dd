/** The plain modules every playbook needs (explicit named exports). */
export { command, buildCommand, type CommandParams, type CommandFacts, type RunSpec } from './command.ts';
export { copy, planContent, readFile, type CopyParams, type CopyOutput, type FileContentFacts } from './copy.ts';
export {
  file,
  planFile,
  parseStat,
  parseMode,
  attributeChanges,
  type FileParams,
  type FileFacts,
  type FileState,
  type Stat,
  type Attributes,
} from './file.ts';
export {
  filesystem,
  planFilesystem,
  parseFilesystemGather,
  type FilesystemParams,
  type FilesystemFacts,
  type FilesystemOutput,
  type FsType,
} from './filesystem.ts';
export {
  mdadm,
  planMdadm,
  gatherScript as mdadmGatherScript,
  type MdadmParams,
  type MdadmFacts,
  type MdadmOutput,
  type MdLevel,
} from './mdadm.ts';
export {
  lvm,
  planLvm,
  lvmOutput,
  wantedExtents,
  type LvmParams,
  type LvParams,
  type LvmFacts,
  type LvmOutput,
  type DeviceFacts as LvmDeviceFacts,
  type LogicalVolume,
  type PhysicalVolume,
  type VolumeGroup,
} from './lvm.ts';
export {
  rootfs,
  planRootfs,
  recipeOf,
  stateDir as rootfsStateDir,
  type RootfsParams,
  type RootfsFacts,
  type RootfsOutput,
} from './rootfs.ts';
export { pkg, planPackage, type PackageParams, type PackageFacts, type PackageInfo, type PackageState } from './package.ts';
export { partition, parsePartitionGather } from './partition.ts';
export {
  planPartition,
  partitionNode,
  resolvePosition,
  type PartitionParams,
  type PartitionSpec,
  type PartitionFacts,
  type PartitionInfo,
  type PartitionOutput,
} from './partition-plan.ts';
export { query, type QueryParams, type QueryOutput } from './query.ts';
export { service, planService, type ServiceParams, type ServiceFacts, type ServiceState } from './service.ts';
export {
  setting,
  applySettings,
  readSetting,
  planSetting,
  type SettingParams,
  type SettingFormat,
  type SettingOutput,
  type SettingValue,
} from './setting.ts';
export {
  targetcli,
  planTargetcli,
  IQN_PATTERN,
  lioWwid,
  unitSerial,
  type TargetcliParams,
  type TargetcliFacts,
  type TargetcliOutput,
} from './targetcli.ts';
export { template, type TemplateParams, type TemplateFacts, type TemplateOutput } from './template.ts';
export { tgt, planTgt, type TgtParams, type TgtFacts, type TgtOutput } from './tgt.ts';
export {
  multipathConf,
  planMultipathConf,
  renderMultipathConf,
  parseMultipathConf,
  parseMapsJson,
  parseMultipathLl,
  type MultipathConfParams,
  type MultipathConfFacts,
  type MultipathConfOutput,
  type MultipathMap,
} from './multipath_conf.ts';
export {
  systemdMount,
  planSystemdMount,
  unitName,
  type SystemdMountParams,
  type SystemdMountFacts,
  type SystemdMountOutput,
} from './systemd_mount.ts';
export {
  iscsiadm,
  planIscsiadm,
  layoutOf as iscsiadmLayout,
  gatherScript as iscsiadmGatherScript,
  type IscsiadmParams,
  type IscsiadmFacts,
  type IscsiadmOutput,
} from './iscsiadm.ts';
export {
  failover,
  planFailover,
  parseResultFile as parseFailoverResult,
  failoverScript,
  summarize as summarizeFailover,
  type FailoverParams,
  type FailoverFacts,
  type FailoverOutput,
  type FailoverResult,
} from './failover.ts';
export {
  firewalld,
  planFirewalld,
  parseListAll as parseFirewalldListAll,
  gatherScript as firewalldGatherScript,
  type FirewalldParams,
  type FirewalldFacts,
  type FirewalldOutput,
  type ZoneInfo as FirewalldZone,
} from './firewalld.ts';
export {
  moosefsMaster,
  moosefsChunkserver,
  moosefsMetalogger,
  moosefsCgiserv,
  moosefsClient,
  moosefsFacts,
  parseMfscli,
  allAtGoal as moosefsAllAtGoal,
  type MoosefsMasterParams,
  type MoosefsMasterOutput,
  type MoosefsChunkserverParams,
  type MoosefsChunkserverOutput,
  type MoosefsMetaloggerParams,
  type MoosefsMetaloggerOutput,
  type MoosefsCgiservParams,
  type MoosefsCgiservOutput,
  type MoosefsClientParams,
  type MoosefsClientOutput,
  type MoosefsFactsParams,
  type MoosefsFacts,
  type MoosefsWait,
  type MfscliReport,
  type ExportEntry,
} from './moosefs.ts';
export {
  repository,
  planRepository,
  kindFor as repositoryKind,
  type RepositoryParams,
  type RepositoryFacts,
  type RepositoryOutput,
  type AptSource,
  type YumRepo,
  type RepositoryKey,
} from './repository.ts';
