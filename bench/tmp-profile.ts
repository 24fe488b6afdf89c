import { spawn } from 'node:child_process'
import { closedLoop, encodeRequest } from './lib/client.js'
import { syntheticPhoto } from './lib/images.js'
const port = 18777
const dir = process.argv[2] ?? '/tmp/s2/prof'
const clients = Number(process.argv[3] ?? 64)
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/server/main.js'], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'] })
for (;;) { try { const r = await fetch(`http://127.0.0.1:${port}/readyz`); if (r.ok) break } catch {} await new Promise((r) => setTimeout(r, 200)) }
const image = await syntheticPhoto(160, 120)
const request = encodeRequest({ method: 'POST', path: '/v1/classify?model=fmnist-12.05m', headers: { 'content-type': 'image/jpeg' }, body: image }, '127.0.0.1')
const result = await closedLoop('127.0.0.1', port, request, clients, 12_000)
const ok = result.responses.filter((r) => r.status === 200).length
console.log('rps', (ok * 1000 / result.elapsedMs).toFixed(1), 'errors', result.errors, 'non200', result.responses.length - ok)
child.kill('SIGTERM'); await new Promise((r) => child.on('exit', r))
