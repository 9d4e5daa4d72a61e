// The network between daemon and broker misbehaves (a TCP proxy: stall, torn TLS records, trickle,
// flapping) and the broker withholds PUBACKs (its MQTT gate). The uplink must keep delivering
// (issue 6 break 4: an acknowledgement timeout that resends or reconnects), and nothing may be
// lost or sent twice beyond one in-flight window per reconnect.

import { waitFor } from '../../helpers/site.js';
import { backlogAtMost, delivers, randomMoment } from '../conditions.js';
import { rand } from '../harness.js';
import { scenario } from '../scenario.js';

describe('chaos: network and broker faults', function () {
  this.timeout(0);

  scenario(
    'proxy stalls, cuts mid-packet, trickles and flaps',
    'delivery resumes after every network fault, with no loss',
    { proxy: true },
    async ({ site, note }) => {
      const proxy = site.proxy!;
      await site.broker.start();
      await site.daemon.start();
      await delivers(site, 5);

      proxy.stall();
      await randomMoment(500, 2500);
      proxy.pass();
      await delivers(site, 5, 30_000);

      for (let i = 0; i < 3; i++) {
        await proxy.cutMidPacket();
        await delivers(site, 3, 30_000);
      }

      proxy.trickle(rand(1500, 4000));
      await delivers(site, 2, 60_000);
      proxy.pass();

      const cutsBefore = proxy.cuts;
      proxy.flap(rand(400, 900));
      await waitFor(() => proxy.cuts >= cutsBefore + 5, 20_000, 'five flaps');
      proxy.steady();
      await delivers(site, 10, 30_000);
      await backlogAtMost(site, 20, 60_000);
      note('connections', proxy.accepted);
      note('cuts', proxy.cuts);
    },
  );

  scenario(
    'broker withholds PUBACKs: one in five dropped, then held, then held and cut',
    'a lost PUBACK never stalls the uplink; held ones are resent after a reconnect',
    { proxy: true, flush: '20ms' },
    async ({ site }) => {
      await site.broker.start();
      await site.daemon.start();
      await delivers(site, 5);

      // 1 in 5 dropped: far more than the 16-publish window is withheld on one connection.
      await site.broker.control('every 5');
      await delivers(site, 150, 45_000);
      await site.broker.control('resume');

      await site.broker.control('pause');
      await randomMoment(300, 1500);
      await site.broker.control('resume');
      await delivers(site, 20, 30_000);

      // Held PUBACKs that never arrive: the connection is cut while they are held.
      await site.broker.control('pause');
      await randomMoment(300, 1000);
      await site.proxy!.cutMidPacket();
      await site.broker.control('resume');
      await delivers(site, 20, 30_000);
      await backlogAtMost(site, 20, 60_000);
    },
  );
});
