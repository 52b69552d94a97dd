/**
 * template: a file holds a rendered handlebars template (templates/NAME.hbs, an absolute path, or inline
 * source), then behaves exactly as copy. Rendering happens on the controller during gather; the host is only
 * read. Secrets among the vars are written in clear and shown as *** in diffs.
 */
import { defineModule } from '../lib/module.ts';
import { maskSecrets } from '../lib/secret.ts';
import { renderSource, renderTemplate, type Rendered } from '../lib/template.ts';
import { diffText } from '../lib/textdiff.ts';
import { planContent, readFile, type FileContentFacts } from './copy.ts';
import { attributeSchema, pathSchema, type Attributes, type Stat } from './file.ts';

export interface TemplateParams extends Attributes {
  path: string;
  /** `NAME` (templates/NAME.hbs under the project root) or an absolute path of a .hbs file. */
  template?: string;
  /** Inline handlebars source (instead of template). */
  source?: string;
  vars?: Record<string, unknown>;
}

export interface TemplateFacts extends FileContentFacts {
  readonly rendered: Rendered;
}

export interface TemplateOutput {
  readonly path: string;
  readonly stat: Stat | null;
  /** The template file it was rendered from, or "(inline)". */
  readonly source: string;
}

export const template = defineModule<TemplateParams, TemplateFacts, TemplateOutput>({
  name: 'template',
  description: 'A file holds a rendered handlebars template (strict: an undefined variable is an error), written atomically.',
  examples: [
    { title: 'An inline template with its variables', params: { path: '/etc/app/app.conf', source: 'name = {{name}}\nport = {{port}}\n', vars: { name: 'node1', port: 9422 }, mode: '0640' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    // Exactly one of template and source: the schema asks for one, buildCommand/gather refuse both.
    anyOf: [{ properties: { template: true }, required: ['template'] }, { properties: { source: true }, required: ['source'] }],
    properties: {
      path: { ...pathSchema, description: 'Absolute path of the file on the host (a symbolic link there is an error).' },
      template: {
        type: 'string',
        minLength: 1,
        description: 'Template name: NAME or NAME.hbs under templates/ of the project root (the current directory), or an absolute path.',
      },
      source: { type: 'string', description: 'Inline handlebars source, instead of a template file.' },
      vars: {
        type: 'object',
        default: {},
        description: 'Variables of the template. Secrets among them are revealed in the file and shown as *** in diffs.',
      },
      ...attributeSchema,
    },
  },
  readAhead: true,
  async gather(conn, params) {
    if (params.template !== undefined && params.source !== undefined) throw new Error('template: give template or source, not both');
    const vars = params.vars ?? {};
    const rendered =
      params.template !== undefined ? renderTemplate(params.template, vars) : renderSource(params.source ?? '', vars);
    return { ...(await readFile(conn, params.path)), rendered };
  },
  plan(params, facts) {
    return planContent(
      {
        path: params.path,
        content: Buffer.from(facts.rendered.content, 'utf8'),
        display: facts.rendered.display,
        // Secrets of the vars show as *** in the new text: mask them (and any known secret) in the old one too.
        displayBefore: maskSecrets(diffText(facts.content)),
        ...(params.mode !== undefined ? { mode: params.mode } : {}),
        ...(params.owner !== undefined ? { owner: params.owner } : {}),
        ...(params.group !== undefined ? { group: params.group } : {}),
      },
      facts,
    );
  },
  output: (_params, facts) => ({ path: facts.path, stat: facts.stat, source: facts.rendered.source }),
});
