'use strict';
// s3rver with a request log: one line "METHOD STATUS URL RANGE MILLISECONDS CONTENT-LENGTH END COPY"
// per answered request (RANGE and CONTENT-LENGTH, of the request, are "-" when absent; END is the
// wall-clock time of the answer in milliseconds, so that requests in flight can be counted; COPY
// is "copy" when the request carries x-amz-copy-source, i.e. CopyObject or UploadPartCopy), and
// UploadPartCopy, which s3rver itself does not implement (see below).
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
// UploadPartCopy, which s3rver 3.7.1 answers NotImplemented: a ranged copy of a stored object
// into a part, refused with 412 when x-amz-copy-source-if-match names another ETag (as S3 does),
// so that server-side part copies can be measured. Path-style requests only.
server.middleware.splice(1, 0, async (ctx, next) => {
  const source = ctx.get('x-amz-copy-source');
  if (ctx.method !== 'PUT' || !source || !ctx.query.uploadId || !ctx.query.partNumber) return next();
  const xml = (status, body) => {
    ctx.status = status;
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  };
  const bucket = decodeURIComponent(ctx.path.split('/')[1]);
  const src = decodeURIComponent(source.split('?')[0]).replace(/^\//, '');
  const cut = src.indexOf('/');
  const [srcBucket, srcKey] = [src.slice(0, cut), src.slice(cut + 1)];
  const store = server.store;
  if (!(await store.existsObject(srcBucket, srcKey))) {
    return xml(404, '<Error><Code>NoSuchKey</Code><Message>no such source key</Message></Error>');
  }
  const meta = await store.getMetadata(srcBucket, srcKey);
  const unquote = (e) => String(e || '').replace(/"/g, '');
  const ifMatch = ctx.get('x-amz-copy-source-if-match');
  if (ifMatch && unquote(ifMatch) !== unquote(meta.etag)) {
    return xml(412, '<Error><Code>PreconditionFailed</Code><Message>copy source changed</Message></Error>');
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(ctx.get('x-amz-copy-source-range') || '');
  const opts = range ? { start: Number(range[1]), end: Number(range[2]) } : undefined;
  const object = await store.getObject(srcBucket, srcKey, opts);
  const { md5 } = await store.putPart(bucket, ctx.query.uploadId, ctx.query.partNumber, object.content);
  xml(200, `<CopyPartResult><LastModified>${new Date().toISOString()}</LastModified><ETag>"${md5}"</ETag></CopyPartResult>`);
});
server.run().then(
  (addr) => console.log(`s3rver listening on ${addr.address}:${addr.port}`),
  (err) => { console.error(err); process.exit(1); },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
