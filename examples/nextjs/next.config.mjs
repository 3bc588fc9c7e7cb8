/** @type {import('next').NextConfig} */
export default {
  // sp-connect runs as the plain Node package it is (it loads node:sqlite, pg and its stylesheet at runtime).
  serverExternalPackages: ['sp-connect'],
  // sp-connect decides about its own paths (`/amazon/` is its console's home).
  skipTrailingSlashRedirect: true,
}
