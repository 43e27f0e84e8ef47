// Webhook receivers must be public addresses: a partner's URL pointing at 127.0.0.1, the cloud
// metadata service (169.254.169.254) or a private network would turn delivery into a way to reach
// this server's neighbours. Checked when a webhook is registered, before every delivery, and, for
// a name, on the very addresses a delivery connects to (`receiverDispatcher`): a name re-pointed
// between the check and the connection (DNS rebinding) still cannot reach a private address.
// STAMPEDE_WEBHOOK_ALLOW_PRIVATE=true lifts the check (receivers on the operator's own network).
import dns from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

// IPv6 forms that carry an IPv4 address a gateway may forward to: the IPv4 address decides.
//   ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible, deprecated), 64:ff9b::a.b.c.d (NAT64,
//   RFC 6052) and 2002:aabb:ccdd::/48 (6to4, RFC 3056).
const EMBEDS_IPV4_AT: ReadonlyArray<{ prefix: string; bits: number; offset: number }> = [
  { prefix: '::ffff:0:0', bits: 96, offset: 12 },
  { prefix: '::', bits: 96, offset: 12 },
  { prefix: '64:ff9b::', bits: 96, offset: 12 },
  { prefix: '2002::', bits: 16, offset: 2 },
];
// Translation and tunnelling ranges that cannot be checked by what they embed: NAT64 for local use
// (RFC 8215) and Teredo (2001::/32, its IPv4 address obfuscated); no receiver needs them.
const UNCHECKABLE_IPV6 = new BlockList();
UNCHECKABLE_IPV6.addSubnet('64:ff9b:1::', 48, 'ipv6');
UNCHECKABLE_IPV6.addSubnet('2001::', 32, 'ipv6');

/** Whether an IP address is outside the public internet (loopback, private, link-local, …). */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return NOT_PUBLIC.check(address, 'ipv4');
  if (NOT_PUBLIC.check(address, 'ipv6') || UNCHECKABLE_IPV6.check(address, 'ipv6')) return true;
  const parsed = ipaddr.IPv6.parse(address);
  for (const form of EMBEDS_IPV4_AT) {
    if (parsed.match(ipaddr.IPv6.parse(form.prefix), form.bits)) {
      return NOT_PUBLIC.check(parsed.toByteArray().slice(form.offset, form.offset + 4).join('.'), 'ipv4');
    }
  }
  return false;
}

/**
 * Throws WEBHOOK_URL_NOT_ALLOWED when the URL's host is, or resolves to, a non-public address,
 * unless the operator allows private receivers.
 */
export async function assertAllowedReceiver(config: Pick<Config, 'webhookAllowPrivate'>, url: string): Promise<void> {
  const parsed = new URL(url);
  // fetch refuses such URLs (and would echo the credentials in its error): refused at registration.
  if (parsed.username || parsed.password) throw new AppError('WEBHOOK_URL_NOT_ALLOWED', 'Webhook URLs cannot carry user info; put a token in the path or query.');
  if (config.webhookAllowPrivate) return;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
  } catch {
    throw new AppError('WEBHOOK_URL_NOT_ALLOWED', `The webhook host ${host} does not resolve.`);
  }
  const blocked = addresses.find(isNonPublicAddress);
  if (blocked !== undefined) {
    throw new AppError('WEBHOOK_URL_NOT_ALLOWED', `The webhook host ${host} resolves to ${blocked}, which is not a public address.`);
  }
}

/**
 * The DNS lookup a delivery's connection uses: resolves like the system does, and fails the
 * connection when any address the name resolves to is not public. (An IP literal never reaches a
 * lookup: `assertAllowedReceiver` checks it.)
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const blocked = addresses.find((entry) => isNonPublicAddress(entry.address));
    if (blocked) {
      const refusal = Object.assign(new Error(`${hostname} resolves to ${blocked.address}, which is not a public address`), { code: 'WEBHOOK_URL_NOT_ALLOWED' });
      return callback(refusal, []);
    }
    if (options.all) return callback(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

/** Connections whose addresses are checked as they are made: the dispatcher deliveries use. */
const PUBLIC_ONLY = new Agent({ connect: { lookup: publicOnlyLookup } });
const ANY_ADDRESS = new Agent();

/** The undici dispatcher a delivery goes through under this configuration. */
export const receiverDispatcher = (config: Pick<Config, 'webhookAllowPrivate'>): Dispatcher =>
  config.webhookAllowPrivate ? ANY_ADDRESS : PUBLIC_ONLY;
