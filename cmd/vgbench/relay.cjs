// A Node `ws` WebSocket relay for cmd/vgbench: node relay.cjs PORT UPSTREAM MODE
// MODE "forward" relays frames untouched; "parse" JSON.parse-s every frame
// first (what a relay that inspects events must at least do).
'use strict';
const http = require('http');
const { WebSocket, WebSocketServer } = require('ws');

const [port, upstream, mode] = process.argv.slice(2);
const parse = mode === 'parse';
const wss = new WebSocketServer({ noServer: true, maxPayload: 32 << 20, perMessageDeflate: false });
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });

server.on('upgrade', (req, socket, head) => {
  const up = new WebSocket(upstream + req.url, {
    headers: { authorization: req.headers.authorization || '' },
    maxPayload: 32 << 20, perMessageDeflate: false,
  });
  up.on('error', () => socket.destroy());
  up.once('open', () => {
    wss.handleUpgrade(req, socket, head, (client) => {
      const pipe = (from, to) => from.on('message', (data, isBinary) => {
        if (parse && !isBinary) JSON.parse(data);
        if (to.readyState === WebSocket.OPEN) to.send(data, { binary: isBinary });
      });
      pipe(client, up);
      pipe(up, client);
      client.on('close', () => up.close());
      up.on('close', () => client.close());
      client.on('error', () => up.terminate());
    });
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
