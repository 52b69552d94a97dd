/**
 * The one shape of CHAP credentials in every iSCSI module (targetcli, tgt, iscsiadm): `{ user, password }`, the
 * password a secret of 12 characters or more. What characters are allowed depends on where the words go (a
 * targetcli command line, a tgt-admin shell and Config::General file, an iscsiadm argument).
 */
export interface ChapRules {
  /** Pattern for the user name. */
  readonly user: string;
  /** Pattern for the secret (checked without ever showing it). */
  readonly secret: string;
  /** Said after the secret's description: where it goes and what that rules out. */
  readonly note: string;
}

export function chapSchema(what: string, rules: ChapRules): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['user', 'password'],
    description: what,
    properties: {
      user: { type: 'string', pattern: rules.user, maxLength: 255, description: 'CHAP user name.' },
      password: {
        secret: { pattern: rules.secret, minLength: 12, maxLength: 255 },
        description: `CHAP secret, 12 characters or more (masked in every output); ${rules.note}.`,
      },
    },
  };
}
