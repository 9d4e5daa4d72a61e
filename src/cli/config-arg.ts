import { defaultConfigPath, loadConfig, type LoadedConfig } from '../config/load.js';

/** `-c FILE`, else EDGEGW_CONFIG, else /etc/edgegw/site.yaml. */
export function configPath(opt: string | undefined): string {
  return opt ?? defaultConfigPath();
}

export function loadFromArg(opt: string | undefined): Promise<LoadedConfig> {
  return loadConfig(configPath(opt));
}
