import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { isNonPublicAddress, receiverDispatcher } from './webhook-address.ts';

describe('webhook receiver addresses', () => {
  it('tells public addresses from loopback, private, link-local and mapped ones', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect(isNonPublicAddress(address), address).toBe(true);
    }
    for (const address of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isNonPublicAddress(address), address).toBe(false);
    }
  });

  it('judges NAT64 and 6to4 addresses by the IPv4 address they carry', () => {
    for (const address of [
      '64:ff9b::7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::a00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::c0a8:101', // NAT64 of private IPv4
      '2002:7f00:1::', '2002:a9fe:a9fe::1', '2002:c0a8:101:1::5', '2002:a00:1::', // 6to4 of private IPv4
      '64:ff9b:1::a00:1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '::10.0.0.1', // local NAT64, Teredo, IPv4-compatible
    ]) {
      expect(isNonPublicAddress(address), address).toBe(true);
    }
    for (const address of ['64:ff9b::808:808', '2002:808:808::1', '2002:5db8:d822::']) {
      expect(isNonPublicAddress(address), address).toBe(false);
    }
  });

  it('checks a name on the addresses the delivery connects to, so a name re-pointed after the check cannot reach a private address', async () => {
    const receiver = createServer((_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://localhost:${(receiver.address() as AddressInfo).port}/hook`;
    try {
      // What a rebinding attack ends with: the name passed the check, and now resolves to loopback.
      const refused = await fetch(url, { method: 'POST', dispatcher: receiverDispatcher({ webhookAllowPrivate: false }) }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(TypeError);
      expect((refused as TypeError).cause).toMatchObject({ code: 'WEBHOOK_URL_NOT_ALLOWED' });
      const allowed = await fetch(url, { method: 'POST', dispatcher: receiverDispatcher({ webhookAllowPrivate: true }) });
      expect(allowed.status).toBe(200);
      await allowed.body?.cancel();
    } finally {
      receiver.close();
    }
  });

  describe('registration (default configuration)', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp(); });
    afterAll(async () => { await t.close(); });

    it('refuses receivers on non-public addresses, by literal or by name, and accepts a public one', async () => {
      const partner = await createPartner(t.app);
      const register = (url: string) => t.app.inject({
        method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url, kind: 'json', events: ['job.succeeded'] },
      });
      for (const url of ['http://127.0.0.1:9/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:8080/x', 'http://localhost:3000/x',
        'http://[64:ff9b::a9fe:a9fe]/latest/meta-data', 'http://[2002:a9fe:a9fe::1]/x']) {
        const refused = await register(url);
        expect(refused.statusCode, url).toBe(400);
        expect(refused.json().error.code).toBe('WEBHOOK_URL_NOT_ALLOWED');
      }
      expect((await register('https://93.184.216.34/hooks/stampede')).statusCode).toBe(201);
    });
  });
});
