package callbacks.receiver;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Runs the kit's test vectors through CallbackReceiver (see tests/receivers). */
public final class RunVectors {
  // The envelope is JSON; the JDK has no parser, and these vectors' envelopes are flat
  // objects of strings without escapes, so a pattern reads them (use a JSON library in code).
  private static final Pattern STRING_FIELD = Pattern.compile("\"(\\w+)\":\"([^\"\\\\]*)\"");

  private RunVectors() {}

  private static List<String> words(String text) {
    return text.isEmpty() ? List.of() : Arrays.asList(text.split(" "));
  }

  private static String run(String[] f) throws Exception {
    Base64.Decoder b64 = Base64.getDecoder();
    if (f[0].equals("sig")) {
      Map<String, String> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
      headers.put("Webhook-Id", f[5]);
      headers.put("webhook-timestamp", f[6]);
      headers.put("webhook-signature", f[7]);
      CallbackReceiver.verify(
          b64.decode(f[8]),
          headers::get,
          words(f[9]),
          words(f[10]),
          Duration.ofSeconds(Long.parseLong(f[4])),
          Instant.ofEpochSecond(Long.parseLong(f[3])));
      return "";
    }
    byte[] key = b64.decode(f[5]);
    byte[] plain;
    if (f[4].equals("values")) {
      plain = CallbackReceiver.decryptValue(f[3], key, f[6]);
    } else {
      Map<String, String> envelope = new TreeMap<>();
      Matcher m = STRING_FIELD.matcher(f[6]);
      while (m.find()) {
        envelope.put(m.group(1), m.group(2));
      }
      plain =
          CallbackReceiver.decryptBody(
              f[3], key, envelope.get("alg"), envelope.get("iv"), envelope.get("encrypted"));
    }
    return Base64.getEncoder().encodeToString(plain);
  }

  public static void main(String[] args) throws Exception {
    StringBuilder out = new StringBuilder();
    for (String line : Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8)) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      String[] fields = line.split("\t", -1);
      String result;
      try {
        result = "accept\t" + run(fields);
      } catch (CallbackReceiver.VerificationException | CallbackReceiver.DecryptionException e) {
        result = "reject\t" + e.getMessage();
      }
      out.append(fields[1]).append('\t').append(result).append('\n');
    }
    System.out.print(out);
  }
}
