/** Params as plain data, edited at a path (keys and array indexes): the security tests' way to damage them. */
export type ParamPath = readonly (string | number)[];

type Node = Record<string | number, unknown>;

/**
 * A deep copy of root with `edit` applied to the object or array holding the value at path (the last key is
 * passed to it). The copy only: the examples the params come from stay as they are.
 */
export function editAt(root: unknown, path: ParamPath, edit: (parent: Node, last: string | number) => void): unknown {
  const copy = structuredClone(root) as Node;
  let at: Node = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Node;
  edit(at, path[path.length - 1] as string | number);
  return copy;
}

/** A copy of root with the value at path replaced (or removed, for undefined). */
export function setAt(root: unknown, path: ParamPath, value: unknown): unknown {
  return editAt(root, path, (parent, last) => {
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  });
}
