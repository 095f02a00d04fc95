/** A new password for `fiona user …`: from stdin when it is not a terminal, else asked twice, unechoed. */
import { createInterface } from "node:readline";

const MIN_PASSWORD_CHARS = 12;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

/** Asks on stderr (stdout stays for output) without echoing what is typed. */
function askHidden(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  process.stderr.write(question);
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
  return new Promise<string>((resolve) =>
    rl.question("", (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    }),
  );
}

export async function readNewPassword(user: string): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await askHidden(`New password for ${user}: `);
    if ((await askHidden("Again: ")) !== password) throw new Error("the passwords differ");
  } else {
    password = await readStdin();
  }
  if (password.length < MIN_PASSWORD_CHARS) {
    throw new Error(`a password needs at least ${MIN_PASSWORD_CHARS} characters`);
  }
  return password;
}
