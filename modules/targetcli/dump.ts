/**
 * The one command that reads LIO's running state from configfs (/sys/kernel/config/target), never `targetcli ls`.
 *
 * Output, one record per line, fields separated by a TAB (configfs paths never hold one; IQNs hold colons):
 *   D <path>              a directory (backstore, target, TPG, portal, LUN, ACL, mapped LUN)
 *   L <path> <link>       a symlink (LUN -> storage object, mapped LUN -> TPG LUN)
 *   F <path> <line>       one line of a readable attribute file (multi-line files give several records)
 * Paths are relative to /sys/kernel/config/target. When the target core is not loaded (no configfs directory)
 * the output is the single line `ABSENT`.
 */
import { sh, type Command } from '../../lib/command.ts';

export const CONFIGFS_ROOT = '/sys/kernel/config/target';

/** Attribute files read, as find -path patterns relative to the root (all small, all readable). */
const FILES = [
  'core/*/*/udev_path',
  'core/*/*/info',
  'core/*/*/enable',
  'core/*/*/wwn/vpd_unit_serial',
  'core/*/*/attrib/emulate_write_cache',
  'iscsi/*/tpgt_*/enable',
  'iscsi/*/tpgt_*/attrib/authentication',
  'iscsi/*/tpgt_*/attrib/generate_node_acls',
  'iscsi/*/tpgt_*/attrib/demo_mode_write_protect',
  'iscsi/*/tpgt_*/attrib/cache_dynamic_acls',
  'iscsi/*/tpgt_*/param/AuthMethod',
  'iscsi/*/tpgt_*/dynamic_sessions',
  'iscsi/*/tpgt_*/acls/*/info',
  'iscsi/*/tpgt_*/acls/*/auth/userid',
  'iscsi/*/tpgt_*/acls/*/auth/password',
  'iscsi/*/tpgt_*/acls/*/auth/userid_mutual',
  'iscsi/*/tpgt_*/acls/*/auth/password_mutual',
  'iscsi/*/tpgt_*/acls/*/lun_*/write_protect',
  'iscsi/discovery_auth/enforce_discovery_auth',
  'iscsi/discovery_auth/userid',
  'iscsi/discovery_auth/password',
  'iscsi/discovery_auth/userid_mutual',
  'iscsi/discovery_auth/password_mutual',
];

/** Directories whose contents are never part of the model (statistics, ALUA, attribute groups). */
const PRUNED = ['statistics', 'fabric_statistics', 'alua', 'attrib', 'param', 'auth', 'pr', 'wwn'];

export function configfsDumpCommand(): Command {
  const prune = PRUNED.flatMap((name, i) => (i === 0 ? ['-name', name] : ['-o', '-name', name]));
  const files = FILES.flatMap((p, i) => (i === 0 ? ['-path', p] : ['-o', '-path', p]));
  // `find -printf` walks the tree once; awk prefixes every line of every readable attribute file.
  return sh`cd ${CONFIGFS_ROOT} 2>/dev/null || { echo ABSENT; exit 0; }
find core iscsi -mindepth 1 \\( ${prune} \\) -prune -o -type l -printf 'L\\t%p\\t%l\\n' -o -type d -printf 'D\\t%p\\n'
find core iscsi -type f \\( ${files} \\) -print0 | xargs -0 -r awk '{ print "F\\t" FILENAME "\\t" $0 }'`;
}
