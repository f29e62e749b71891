/**
 * Whether Dawn can find a Vulkan driver on Linux, answered without asking Dawn. Asked on a machine
 * with no Vulkan loader, or a loader and no driver (a machine where a browser's packages brought
 * libvulkan.so.1 but there is no GPU), Dawn writes native warnings with a C++ source location to
 * stderr ("vkCreateInstance: Found no drivers!") before answering "no adapter"; every command that
 * looks for a GPU would print them. Where the answer is known beforehand, the project does not ask.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const VULKAN_LOADER = 'libvulkan.so.1';
const SYSTEM_LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

/**
 * Whether the dynamic linker can find the Vulkan loader, which Dawn needs on Linux (elsewhere: true,
 * Dawn uses Metal or Direct3D there).
 */
export function vulkanLoaderFindable(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux') return true;
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...SYSTEM_LIBRARY_DIRS];
  if (dirs.some((d) => existsSync(join(d, VULKAN_LOADER)))) return true;
  try {
    // the linker's cache names every library ldconfig found, wherever it lies
    return readFileSync('/etc/ld.so.cache').includes(VULKAN_LOADER);
  } catch {
    return false;
  }
}

const paths = (v: string | undefined, fallback: string[]): string[] => {
  const list = (v ?? '').split(':').filter(Boolean);
  return list.length > 0 ? list : fallback;
};

/**
 * The places the Vulkan loader reads driver manifests from on Linux, in its documented order
 * ("Driver Discovery on Linux" in the loader's LoaderDriverInterface.md): the files and folders of
 * VK_DRIVER_FILES (or the older VK_ICD_FILENAMES) when set, and nothing else; otherwise those of
 * VK_ADD_DRIVER_FILES, then vulkan/icd.d under the XDG configuration folders, /usr/local/etc and /etc,
 * and the XDG data folders.
 */
export function vulkanDriverSearch(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): { readonly from: 'VK_DRIVER_FILES' | 'VK_ICD_FILENAMES' | 'default'; readonly places: string[] } {
  for (const name of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES'] as const) {
    const list = paths(env[name], []);
    if (list.length > 0) return { from: name, places: list };
  }
  const icd = (dirs: string[]) => dirs.map((d) => join(d, 'vulkan', 'icd.d'));
  const envHome = env.HOME || home;
  return {
    from: 'default',
    places: [
      ...paths(env.VK_ADD_DRIVER_FILES, []),
      ...icd(paths(env.XDG_CONFIG_HOME, [join(envHome, '.config')])),
      ...icd(paths(env.XDG_CONFIG_DIRS, ['/etc/xdg'])),
      ...icd(['/usr/local/etc', '/etc']),
      ...icd(paths(env.XDG_DATA_HOME, [join(envHome, '.local', 'share')])),
      ...icd(paths(env.XDG_DATA_DIRS, ['/usr/local/share', '/usr/share'])),
    ],
  };
}

/** The driver manifests (JSON files) the Vulkan loader would read: a place that is a file counts itself, a folder its *.json files. */
export function vulkanDriverManifests(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string[] {
  const found: string[] = [];
  for (const place of vulkanDriverSearch(env, home).places) {
    try {
      if (statSync(place).isDirectory()) found.push(...readdirSync(place).filter((f) => f.endsWith('.json')).map((f) => join(place, f)));
      else found.push(place);
    } catch {
      // a place that does not exist or cannot be read: the loader skips it too
    }
  }
  return found;
}

/**
 * Why Dawn would find no Vulkan adapter on this machine, or null where it may find one (off Linux
 * always: Dawn uses Metal or Direct3D there). The reason names what is missing.
 */
export function whyNoVulkan(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string | null {
  if (platform !== 'linux') return null;
  if (!vulkanLoaderFindable(env, platform)) return `Dawn needs the Vulkan loader, ${VULKAN_LOADER}, and the dynamic linker has none`;
  if (vulkanDriverManifests(env, home).length > 0) return null;
  const search = vulkanDriverSearch(env, home);
  return search.from === 'default'
    ? "the Vulkan loader finds no driver: no manifest in any vulkan/icd.d folder, where a GPU's driver or Mesa's lavapipe puts one"
    : `the Vulkan loader finds no driver: ${search.from} names ${search.places.join(':')}, and no manifest is there`;
}
