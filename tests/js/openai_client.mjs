// Drives the official openai npm package against `apirecorder serve` and prints what it saw
// as one JSON line: node openai_client.mjs <base URL> <test id> <scenario...>
import OpenAI from "openai";

const [baseURL, testId, ...scenarios] = process.argv.slice(2);
const client = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY ?? "sk-from-node",
  baseURL,
  maxRetries: 0,
  defaultHeaders: testId ? { "X-Apirecorder-Test-Id": testId } : {},
});
const user = (content) => [{ role: "user", content }];

const run = {
  async chat() {
    const answer = await client.chat.completions.create({ model: "gpt-4o", messages: user("Name a ringed planet") });
    return { content: answer.choices[0].message.content, id: answer.id, usage: answer.usage };
  },
  async stream() {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: user("one two three"),
      stream: true,
    });
    const deltas = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0]?.delta?.content ?? "");
    return deltas;
  },
  async error() {
    try {
      await client.chat.completions.create({ model: "gpt-4o", messages: user("TRIGGER_400 please") });
      return "no error";
    } catch (error) {
      return { name: error.constructor.name, status: error.status, message: error.message };
    }
  },
  async responses() {
    const answer = await client.responses.create({ model: "gpt-4o", input: "Say hi" });
    const stream = await client.responses.create({ model: "gpt-4o", input: "Say hi", stream: true });
    const kinds = [];
    for await (const event of stream) kinds.push(event.type);
    return { text: answer.output_text, kinds };
  },
  async miss() {
    try {
      await client.chat.completions.create({ model: "gpt-4o", messages: user("never recorded") });
      return "no error";
    } catch (error) {
      return { name: error.constructor.name, status: error.status, message: error.message };
    }
  },
  async embeddings() {
    const answer = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "bb"] });
    return answer.data.map((item) => item.embedding.length);
  },
};

const out = {};
for (const name of scenarios) out[name] = await run[name]();
console.log(JSON.stringify(out));
