/** Headless Chromium for the dashboard's tests and screenshots: Debian's chromium package, driven by playwright-core (no browser download). */
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const INSTALL_CHROMIUM = "install Debian's chromium package: apt-get update && apt-get install -y chromium (as root; `npm test` does it by itself when run as root with access to the Debian mirrors)";

/** Why Chromium cannot be started here, or null when it can. */
export const chromiumMissing = (): string | null => (fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing: ${INSTALL_CHROMIUM}`);

/** Chromium with a fresh profile in `userDataDir`, no network services of its own, no GPU. */
export function openBrowser(userDataDir: string, viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
