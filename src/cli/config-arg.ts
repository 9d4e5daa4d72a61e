import { defaultConfigPath, loadConfig, type LoadedConfig, type LoadOptions } from '../config/load.js';

/** `-c FILE`, else EDGEGW_CONFIG, else /etc/edgegw/site.yaml. */
export function configPath(opt: string | undefined): string {
  return opt ?? defaultConfigPath();
}

export function loadFromArg(opt: string | undefined, load: LoadOptions = {}): Promise<LoadedConfig> {
  return loadConfig(configPath(opt), load);
}
