/** Which project and pipeline a file of the server is. */

/** Where a pipeline file sits: its project folder and its name, when it is in one. */
export interface IPipelineLocation {
  project: string;
  name: string;
}

const PIPELINE_FILE = /^(?:(.*)\/)?pipelines\/([^/]+)\.pipeline\.json$/;

/** The file of pipeline `name` in `project` (`''` for the server root): the inverse of
 * `locatePipeline`. */
export function pipelineFile(project: string, name: string): string {
  return `${project ? project + '/' : ''}pipelines/${name}.pipeline.json`;
}

/** `team/shop/pipelines/orders.pipeline.json` → project `team/shop`, name `orders`. */
export function locatePipeline(path: string): IPipelineLocation | null {
  const match = PIPELINE_FILE.exec(path);
  return match ? { project: match[1] ?? '', name: match[2] } : null;
}
