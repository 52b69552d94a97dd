/**
 * LIO's identifiers of a LUN. A backstore's unit serial (VPD page 0x80, `wwn/vpd_unit_serial` in configfs) is a
 * UUID; the kernel builds the LUN's NAA designator (VPD page 0x83) from it: NAA 6, LIO's IEEE company id
 * 0x001405, then the serial's first 25 hex digits. multipath's WWID is that designator with the SCSI id type 3
 * in front: serial 8773caba-49b7-4f72-b956-5278446bc24e -> WWID 360014058773caba49b74f72b95652784 (both
 * recorded on the lab: test/fixtures/targetcli/configfs-session.json, multipath/maps-json.json).
 *
 * With a serial chosen in advance, the initiator's multipath.conf can name the map (a WWID alias) before the
 * target exists, and check mode can plan the whole chain exactly.
 */
import { createHash } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The WWID an initiator sees for a LIO LUN whose backstore has this unit serial. */
export function lioWwid(serial: string): string {
  const s = serial.toLowerCase();
  if (!UUID.test(s)) throw new Error(`"${serial}" is not a LIO unit serial (a UUID, 8-4-4-4-12 hex digits)`);
  return `36001405${s.replaceAll('-', '').slice(0, 25)}`;
}

/**
 * A stable unit serial derived from a name (e.g. 'sto1/data-chunk1'): the same name always gives the same
 * serial, so a re-created backstore keeps its WWID. Shaped as a version-5-style UUID from SHA-256.
 */
export function unitSerial(name: string): string {
  const h = createHash('sha256').update(`sanbook-lio-unit-serial:${name}`).digest('hex').slice(0, 32).split('');
  h[12] = '5';
  h[16] = ((parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  const x = h.join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
