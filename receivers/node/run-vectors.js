// Run the kit's test vectors through callback-receiver.js (see tests/receivers).
// Usage: node run-vectors.js VECTORS.tsv
"use strict";

const fs = require("node:fs");
const {
  verify,
  decryptValue,
  decryptBody,
  VerificationError,
  DecryptionError,
} = require("./callback-receiver");

function run(fields) {
  if (fields[0] === "sig") {
    const [now, tolerance, msgId, stamp, signature, body, secrets, publicKeys] = fields.slice(3);
    const headers = {
      "Webhook-Id": msgId,
      "webhook-timestamp": stamp,
      "webhook-signature": signature,
    };
    verify(Buffer.from(body, "base64"), headers, {
      secrets: secrets.split(" ").filter(Boolean),
      publicKeys: publicKeys.split(" ").filter(Boolean),
      toleranceS: Number(tolerance),
      now: Number(now),
    });
    return "";
  }
  const [algorithm, scope, key, token] = fields.slice(3, 7);
  const rawKey = Buffer.from(key, "base64");
  const plain =
    scope === "values"
      ? decryptValue(algorithm, rawKey, token)
      : decryptBody(algorithm, rawKey, JSON.parse(token));
  return plain.toString("base64");
}

const out = [];
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
  if (!line.trim() || line.startsWith("#")) continue;
  const fields = line.split("\t");
  try {
    out.push(`${fields[1]}\taccept\t${run(fields)}`);
  } catch (error) {
    if (!(error instanceof VerificationError || error instanceof DecryptionError)) throw error;
    out.push(`${fields[1]}\treject\t${error.message}`);
  }
}
process.stdout.write(out.join("\n") + "\n");
