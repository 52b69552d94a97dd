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
export { pkg, planPackage, type PackageParams, type PackageFacts, type PackageInfo, type PackageState } from './package.ts';
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
export { template, type TemplateParams, type TemplateFacts, type TemplateOutput } from './template.ts';
