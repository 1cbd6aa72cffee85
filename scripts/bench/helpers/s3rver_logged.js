'use strict';
// s3rver with a request log: one line "METHOD STATUS URL RANGE MILLISECONDS CONTENT-LENGTH END COPY"
// per answered request (RANGE and CONTENT-LENGTH, of the request, are "-" when absent; END is the
// wall-clock time of the answer in milliseconds, so that requests in flight can be counted; COPY
// is "copy" when the request carries x-amz-copy-source, i.e. CopyObject or UploadPartCopy).
//
//   node s3rver_logged.js S3RVER_MODULE_DIR DATA_DIR PORT LOG_FILE
const fs = require('fs');

const [, , modulePath, directory, port, logFile] = process.argv;
const S3rver = require(modulePath);
const fd = fs.openSync(logFile, 'a');
const server = new S3rver({ address: '127.0.0.1', port: Number(port), silent: true, directory });
server.middleware.unshift(async (ctx, next) => {
  const start = process.hrtime.bigint();
  ctx.res.once('finish', () => {
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    fs.writeSync(fd, `${ctx.method} ${ctx.res.statusCode} ${ctx.url} ${ctx.get('range') || '-'} ${ms.toFixed(2)} ${ctx.get('content-length') || '-'} ${Date.now()} ${ctx.get('x-amz-copy-source') ? 'copy' : '-'}\n`);
  });
  await next();
});
server.run().then(
  (addr) => console.log(`s3rver listening on ${addr.address}:${addr.port}`),
  (err) => { console.error(err); process.exit(1); },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
