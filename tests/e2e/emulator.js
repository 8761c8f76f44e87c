'use strict';
// The npm package telegram-test-api (a third-party Bot API emulator), started for the e2e
// tests with the few patches aiogram needs. Usage: `node emulator.js`; it listens on a free
// port of 127.0.0.1, prints `{"port": N}` on stdout once it accepts connections, and exits
// on SIGTERM/SIGINT or when its stdin closes (the test process went away).
//
// The tests talk to it like users, over the package's own client HTTP API (/sendMessage,
// /sendCommand, /sendCallback, /getUpdatesHistory); the bot talks to /bot<token>/<method>.
// Everything below `patches` is a gap of the emulator, each with what it is for.

const crypto = require('crypto');
const http = require('http');
const axios = require('axios'); // the package's own HTTP client (a dependency of it)
const TelegramServer = require('telegram-test-api');
const { routes } = require('telegram-test-api/lib/routes/index');

const log = (...args) => console.error('[emulator]', ...args);

// Bot API: the bot's id is the token's numeric prefix.
const botUser = (token) => ({
  id: Number(String(token).split(':')[0]) || 1,
  is_bot: true,
  first_name: 'Voronka E2E',
  username: 'voronka_e2e_bot',
});

const unixTime = (ms) => Math.floor(ms / 1000);

// A stored bot message ({messageId, time, botToken, message: <request fields>}) as the
// Message object Telegram returns for it.
function asMessage(stored) {
  const m = stored.message;
  const out = {
    message_id: stored.messageId,
    date: unixTime(stored.time),
    chat: { id: Number(m.chat_id), type: 'private' },
    from: botUser(stored.botToken),
    text: m.text,
  };
  if (m.reply_markup && m.reply_markup.inline_keyboard) out.reply_markup = m.reply_markup;
  // Patch 12 (below): a message sent through a business connection says so, as in Telegram.
  if (m.business_connection_id) out.business_connection_id = m.business_connection_id;
  return out;
}

const findBotMessage = (server, chatId, messageId) => server.storage.botMessages.find(
  (u) => String(u.messageId) === String(messageId) && String(u.message.chat_id) === String(chatId),
);

const sha256 = (buffer) => crypto.createHash('sha256').update(buffer).digest('hex');

const USER_EVENTS = ['AddedUserMessage', 'AddedUserCommand', 'AddedUserCallbackQuery'];

// A file sent by its Telegram id (a string that is not "attach://<part>", aiogram's name for
// a file uploaded in the same request).
const isFileId = (value) => typeof value === 'string' && !value.startsWith('attach://');

const WRONG_FILE = {
  ok: false, error_code: 400, description: 'Bad Request: wrong file identifier/HTTP URL specified',
};

function patches(app, server) {
  // 1. getMe: the emulator's user has no `is_bot` (aiogram's User requires it) and a fixed
  //    id; answer the bot's own id (from the token) as Telegram does.
  app.all('/bot:token/getMe', (req, res) => {
    res.json({ ok: true, result: botUser(req.params.token) });
  });

  // 2. getUpdates: the emulator answers at once (ignoring `timeout`, so long polling spins)
  //    and marks updates read when handed out (ignoring `offset`, so an update fetched by a
  //    request that then died is lost). Here: hold the request until an update arrives or
  //    `timeout` passes, and confirm updates by `offset`, as Telegram does.
  app.all('/bot:token/getUpdates', (req, res) => {
    const params = { ...req.query, ...req.body };
    const { token } = req.params;
    server.e2ePolled.add(token);
    const offset = Number(params.offset) || 0;
    const limit = Math.min(Number(params.limit) || 100, 100);
    const timeoutMs = Math.min(Math.max(Number(params.timeout) || 0, 0), 50) * 1000;
    if (offset) {
      server.storage.userMessages = server.storage.userMessages.filter(
        (u) => u.botToken !== token || u.updateId >= offset,
      );
    }
    const pending = () => server.storage.userMessages
      .filter((u) => u.botToken === token)
      .slice(0, limit);
    let timer = null;
    const stop = () => {
      clearTimeout(timer);
      USER_EVENTS.forEach((e) => server.off(e, onUpdate)); // eslint-disable-line no-use-before-define
    };
    const answer = () => {
      stop();
      if (!res.writableEnded && !res.destroyed) {
        res.json({ ok: true, result: pending().map(TelegramServer.formatUpdate) });
      }
    };
    const onUpdate = () => { if (pending().length) answer(); };
    if (pending().length || !timeoutMs) {
      answer();
      return;
    }
    USER_EVENTS.forEach((e) => server.on(e, onUpdate));
    timer = setTimeout(answer, timeoutMs);
    res.on('close', stop); // the bot gave up (shutdown): nothing is consumed
  });

  // 3. sendMessage / editMessageText: the emulator echoes the request fields as the result
  //    (date in ms, link_preview_options as a JSON string, which aiogram's Message rejects)
  //    and answers edits with null. Here: a Telegram-shaped Message. An edit without
  //    reply_markup removes the inline keyboard, as in Telegram (the emulator kept the old
  //    one, so the user would see stale buttons); editing an unknown message is a 400.
  app.all('/bot:token/sendMessage', (req, res) => {
    server.addBotMessage(req.body, req.params.token);
    const stored = server.storage.botMessages[server.storage.botMessages.length - 1];
    res.json({ ok: true, result: asMessage(stored) });
  });
  const edit = (req, res) => {
    const body = { ...req.body };
    const stored = findBotMessage(server, body.chat_id, body.message_id);
    if (!stored) {
      res.status(400).json({
        ok: false, error_code: 400, description: 'Bad Request: message to edit not found',
      });
      return;
    }
    const fields = TelegramServer.normalizeMessage(body);
    if (req.params.method === 'editMessageText' && !fields.reply_markup) {
      delete stored.message.reply_markup;
    }
    stored.message = { ...stored.message, ...fields };
    server.emit('EditedMessageText');
    res.json({ ok: true, result: asMessage(stored) });
  };
  app.all('/bot:token/:method(editMessageText|editMessageReplyMarkup)', edit);

  // 9. sendPhoto / sendDocument / editMessageMedia (the /funnel chart, /export): aiogram
  //    uploads files as multipart form-data, which the emulator neither parses nor knows
  //    (HTTP 500). Here the fields are read with Node's own multipart parser (fetch's
  //    Response.formData), the file itself is dropped, and the message is stored like a text
  //    message whose text is its caption (or "[photo]" / "[document]"), so a test user sees
  //    that it arrived and can tap its buttons.
  const formFields = async (req) => {
    if (!req.is('multipart/form-data')) return { ...req.body };
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const form = await new Response(Buffer.concat(chunks), {
      headers: { 'content-type': req.headers['content-type'] },
    }).formData();
    const fields = {};
    const uploads = {}; // patch 16: part name -> sha256 of the uploaded bytes
    for (const [key, value] of form.entries()) {
      if (typeof value === 'string') {
        fields[key] = value;
      } else {
        uploads[key] = sha256(Buffer.from(await value.arrayBuffer()));
        if (value.name) fields[`${key}_name`] = value.name; // an upload's file name
      }
    }
    if (typeof fields.reply_markup === 'string') fields.reply_markup = JSON.parse(fields.reply_markup);
    Object.defineProperty(fields, 'uploads', { value: uploads }); // not a field
    return fields;
  };
  app.all('/bot:token/:method(sendPhoto|sendDocument)', async (req, res) => {
    const fields = await formFields(req);
    const kind = req.params.method === 'sendPhoto' ? 'photo' : 'document';
    // 11. ...a file sent again by its file_id (a string field, not an upload) must be one
    //     Telegram knows (patch 10 registers a user's uploads), else it is Telegram's 400;
    //     the stored message keeps the file id, so a test sees exactly which file came back.
    const fileId = isFileId(fields[kind]) ? fields[kind] : null;
    if (fileId !== null && !server.e2eFiles.has(fileId)) {
      res.status(400).json(WRONG_FILE);
      return;
    }
    const message = { chat_id: fields.chat_id, text: fields.caption || `[${kind}]` };
    if (fileId !== null) message.file_id = fileId;
    // 16. ...an upload (the file itself in the request: "attach://<part>") is kept as the
    //     SHA-256 of its bytes, so a test sees which content came (Voronka's stored copy).
    const part = typeof fields[kind] === 'string' && fields[kind].startsWith('attach://')
      ? fields[kind].slice('attach://'.length) : null;
    if (part !== null && fields.uploads[part]) message.upload_sha256 = fields.uploads[part];
    // the file's name: the upload's own, or the one a user's file came with (patch 10)
    const fileName = fields[`${kind}_name`] || (part !== null && fields[`${part}_name`])
      || (fileId !== null && server.e2eFileNames.get(fileId));
    if (fileName) message.file_name = fileName;
    if (fields.reply_markup) message.reply_markup = fields.reply_markup;
    server.addBotMessage(message, req.params.token);
    const stored = server.storage.botMessages[server.storage.botMessages.length - 1];
    res.json({ ok: true, result: asMessage(stored) });
  });

  // 11. sendMediaGroup (the deal card's Files: photos and videos as an album), unknown to
  //     the emulator (HTTP 500). Here: 2-10 items, each a known file id (patch 10), each
  //     stored as a message of its own (its caption, or "[photo]") that keeps its file id;
  //     the result is the list of Messages, as Telegram answers.
  app.all('/bot:token/sendMediaGroup', async (req, res) => {
    const fields = await formFields(req);
    const media = typeof fields.media === 'string' ? JSON.parse(fields.media) : fields.media;
    if (!Array.isArray(media) || media.length < 2 || media.length > 10) {
      res.status(400).json({
        ok: false, error_code: 400, description: 'Bad Request: wrong number of media specified',
      });
      return;
    }
    if (media.some((item) => isFileId(item.media) && !server.e2eFiles.has(item.media))) {
      res.status(400).json(WRONG_FILE);
      return;
    }
    const result = media.map((item) => {
      const message = { chat_id: fields.chat_id, text: item.caption || `[${item.type}]` };
      if (isFileId(item.media)) message.file_id = item.media;
      if (isFileId(item.media) && server.e2eFileNames.get(item.media)) {
        message.file_name = server.e2eFileNames.get(item.media);
      }
      server.addBotMessage(message, req.params.token);
      return asMessage(server.storage.botMessages[server.storage.botMessages.length - 1]);
    });
    res.json({ ok: true, result });
  });

  // 10. A user's upload: the package's client API takes text messages only. Here a test
  //     posts {botToken, from, chat, kind: "photo" | "document", caption?, file_name?}; the
  //     wrapper makes the file ids Telegram would (a photo in two sizes, the largest last),
  //     registers them (patch 11 accepts only known ids back) and delivers the message
  //     like any user message. The answer gives the ids, so a test can follow the file.
  app.post('/e2e/sendMedia', (req, res) => {
    const body = { ...req.body };
    server.e2eFileSeq += 1;
    const n = server.e2eFileSeq;
    const message = {
      botToken: body.botToken, from: body.from, chat: body.chat, date: body.date,
    };
    if (body.caption) message.caption = body.caption;
    let ids;
    if (body.kind === 'photo') {
      message.photo = [
        { file_id: `AgE2E-${n}-s`, file_unique_id: `uE2E-${n}-s`, width: 90, height: 67 },
        { file_id: `AgE2E-${n}`, file_unique_id: `uE2E-${n}`, width: 1280, height: 960 },
      ];
      ids = message.photo.map((p) => p.file_id);
    } else if (body.kind === 'document') {
      message.document = {
        file_id: `BQE2E-${n}`,
        file_unique_id: `uE2E-${n}`,
        file_name: body.file_name || `file-${n}.pdf`,
        mime_type: 'application/pdf',
      };
      ids = [message.document.file_id];
      server.e2eFileNames.set(message.document.file_id, message.document.file_name);
    } else {
      res.status(400).json({ ok: false, description: 'kind: photo or document' });
      return;
    }
    // Patch 13 serves these bytes: the test's `content` (base64), else a few of its own.
    const content = body.content
      ? Buffer.from(body.content, 'base64') : Buffer.from(`voronka e2e file ${n}\n`);
    ids.forEach((id) => server.e2eFiles.set(id, { kind: body.kind, content }));
    server.addUserMessage(message);
    res.json({ ok: true, result: { file_ids: ids, sha256: sha256(content) } });
  });

  // 13. getFile and the file download (Voronka keeps its own copy of every file, bot/files.py):
  //     the emulator knows neither. Here: getFile answers a file a user uploaded (patch 10)
  //     with a file_path, and GET /file/bot<token>/<file_path> serves its bytes, as the Bot
  //     API does; an unknown id is Telegram's 400.
  app.all('/bot:token/getFile', (req, res) => {
    const params = { ...req.query, ...req.body };
    const file = server.e2eFiles.get(String(params.file_id));
    if (!file) {
      res.status(400).json({ ok: false, error_code: 400, description: 'Bad Request: invalid file_id' });
      return;
    }
    res.json({
      ok: true,
      result: {
        file_id: String(params.file_id),
        file_unique_id: `u${params.file_id}`,
        file_size: file.content.length,
        file_path: `${file.kind}s/${params.file_id}`,
      },
    });
  });
  app.get('/file/bot:token/:kind/:fileId', (req, res) => {
    const file = server.e2eFiles.get(req.params.fileId);
    if (!file) {
      res.status(404).json({ ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    res.type('application/octet-stream').send(file.content);
  });

  // 15. For the tests: Telegram forgets a file (the bot was replaced, the file deleted):
  //     POST {file_id}; from then on sending it by id and getFile are Telegram's 400.
  app.post('/e2e/forgetFile', (req, res) => {
    const known = server.e2eFiles.delete(String(req.body.file_id));
    res.json({ ok: true, result: known });
  });

  // 12. Telegram Business updates (business_connection, business_message,
  //     edited_business_message, deleted_business_messages): the package has no way to make
  //     them. A test posts {botToken, update: {<one of those>: {...}}}; the wrapper gives it
  //     the next update_id and delivers it by getUpdates or the webhook (patches 2 and 8)
  //     exactly as given -- what a connected manager's chats would send.
  app.post('/e2e/business', (req, res) => {
    const { botToken, update } = req.body;
    const kinds = [
      'business_connection', 'business_message', 'edited_business_message',
      'deleted_business_messages',
    ];
    if (!botToken || !update || Object.keys(update).length !== 1
        || !kinds.includes(Object.keys(update)[0])) {
      res.status(400).json({ ok: false, description: `update: one of ${kinds.join(', ')}` });
      return;
    }
    const updateId = server.updateId;
    server.addUserUpdate({ ...server.getCommonFields(botToken), e2eRaw: update });
    server.emit('AddedUserMessage'); // wakes a held getUpdates (patch 2)
    res.json({ ok: true, result: { update_id: updateId } });
  });
  app.all('/bot:token/editMessageMedia', async (req, res) => {
    const fields = await formFields(req);
    const stored = findBotMessage(server, fields.chat_id, Number(fields.message_id));
    if (!stored) {
      res.status(400).json({
        ok: false, error_code: 400, description: 'Bad Request: message to edit not found',
      });
      return;
    }
    if (fields.reply_markup) stored.message.reply_markup = fields.reply_markup;
    server.emit('EditedMessageText');
    res.json({ ok: true, result: asMessage(stored) });
  });

  // 4. Methods the emulator does not know answer HTTP 500 with a non-Bot-API body, which
  //    stops `voronka run` at start (it sets the command menus). They change nothing a
  //    user sees here: accept them.
  app.all(
    '/bot:token/:method(setMyCommands|deleteMyCommands|setChatMenuButton|setMyDescription'
      + '|setMyShortDescription|sendChatAction)',
    (req, res) => res.json({ ok: true, result: true }),
  );

  // 5. answerCallbackQuery: the emulator throws the answer away, so a user could never see
  //    the alert a button shows (a refusal, "the deal changed"). Keep it, per bot, in order.
  app.all('/bot:token/answerCallbackQuery', (req, res) => {
    const params = { ...req.query, ...req.body };
    server.e2eAnswers.push({
      token: req.params.token,
      callback_query_id: String(params.callback_query_id),
      text: params.text || '',
      show_alert: String(params.show_alert) === 'true',
    });
    res.json({ ok: true, result: true });
  });

  // 6. For the tests, not the Bot API: has this bot polled, is its webhook set, which
  //    callback answers did it give?
  app.get('/e2e/bot/:token', (req, res) => {
    const { token } = req.params;
    const webhook = server.webhooks[token];
    res.json({
      polled: server.e2ePolled.has(token),
      webhook: webhook ? webhook.url : null,
      answers: server.e2eAnswers.filter((a) => a.token === token),
    });
  });
}

// 7. Callback-query updates lack `chat_instance` (required by aiogram's CallbackQuery): add
//    it (Telegram's is an opaque id of the chat the message is in).
const formatUpdate = TelegramServer.formatUpdate;
TelegramServer.formatUpdate = (update) => {
  if (update.e2eRaw) return { update_id: update.updateId, ...update.e2eRaw }; // patch 12
  const out = formatUpdate(update);
  if (out.callback_query) {
    const { message } = out.callback_query;
    out.callback_query.chat_instance = String((message && message.chat && message.chat.id) || 0);
  }
  return out;
};

// 8. Webhook delivery: the emulator posts without the X-Telegram-Bot-Api-Secret-Token header
//    (so a bot that checks it answers 401), and a non-2xx answer or a refused connection is
//    an unhandled rejection that kills the emulator; it also allocates the update id only
//    after the POST returns (two quick inputs could share one). Here: the header from
//    setWebhook's secret_token; failures are logged (not retried), never thrown; ids are
//    allocated at once; deliveries go one at a time, in order, as Telegram sends them.
function addUserUpdate(update) {
  if (!update.botToken) throw new Error('an update needs a botToken');
  this.updateId += 1;
  const webhook = this.webhooks[update.botToken];
  if (!webhook) {
    this.storage.userMessages.push(update);
    return Promise.resolve();
  }
  const headers = webhook.secret_token
    ? { 'X-Telegram-Bot-Api-Secret-Token': webhook.secret_token } : {};
  const body = TelegramServer.formatUpdate(update);
  const deliver = () => axios.post(webhook.url, body, {
    headers, timeout: 30000, validateStatus: () => true,
  }).then((resp) => {
    if (resp.status < 200 || resp.status > 299) {
      log(`webhook ${webhook.url} answered ${resp.status} to update ${body.update_id}`);
    }
  }, (err) => log(`webhook ${webhook.url} failed for update ${body.update_id}: ${err.message}`));
  this.e2eDeliveries = (this.e2eDeliveries || Promise.resolve()).then(deliver);
  return Promise.resolve();
}

function main() {
  routes.unshift(patches); // before the package's own routes, after its body parsers
  const server = new TelegramServer({ host: '127.0.0.1', storeTimeout: 24 * 3600 });
  server.e2ePolled = new Set();
  server.e2eAnswers = [];
  server.e2eFiles = new Map(); // file_id -> {kind, content}, users' uploads (patches 10, 11, 13)
  server.e2eFileSeq = 0;
  server.e2eFileNames = new Map(); // file_id -> the name a user's document came with
  server.addUserUpdate = addUserUpdate;
  // Listening ourselves (not server.start()): the package's config turns port 0 into 9000;
  // a port chosen by the OS cannot clash with other test runs.
  const httpServer = http.createServer(server.webServer);
  httpServer.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: httpServer.address().port })}\n`);
  });
  const quit = () => {
    httpServer.close();
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  process.stdin.on('end', quit);
  process.stdin.on('error', quit);
  process.stdin.resume();
}

main();
