// stepgate: the WebAuthn ceremonies of the sign-in, enrollment and review
// pages. A button with data-passkey="login|register|approve" and
// data-begin / data-finish URLs runs: POST begin → navigator.credentials
// create or get → POST finish → go where the server says. No inline script:
// this file is the only script (Content-Security-Policy script-src 'self').
(function () {
  "use strict";

  function fromB64url(s) {
    s = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    if (!buf) { return undefined; }
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // localPath accepts only a path of this site, never //host or /\host.
  function localPath(p) {
    return typeof p === "string" && p.charAt(0) === "/" && p.charAt(1) !== "/" && p.charAt(1) !== "\\";
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var err = new Error(data.error || ("The server answered " + res.status + "."));
          err.redirect = data.redirect;
          throw err;
        }
        return data;
      });
    });
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }

  function extensions(cred) {
    try { return cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}; } catch (e) { return {}; }
  }

  // credentialJSON is the JSON of a PublicKeyCredential with response, the
  // JSON of its attestation or assertion response.
  function credentialJSON(cred, response) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: extensions(cred),
      response: response
    };
  }

  function attestationJSON(cred) {
    var r = cred.response;
    return credentialJSON(cred, {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : []
    });
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return credentialJSON(cred, {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : undefined
    });
  }

  function friendly(err) {
    if (err && err.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. Try again.";
    }
    if (err && err.name === "InvalidStateError") {
      return "This passkey is already registered.";
    }
    if (err && err.name === "SecurityError") {
      return "This browser refused the passkey request for this address.";
    }
    return (err && err.message) || "Something went wrong. Try again.";
  }

  function run(button) {
    var box = button.closest("[data-passkey-box]") || document;
    var status = box.querySelector("[data-passkey-status]");
    var say = function (text, bad) {
      if (status) {
        status.textContent = text;
        status.classList.toggle("error", !!bad);
      }
    };
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser does not support passkeys. Use an authenticator app code instead.", true);
      return;
    }
    var kind = button.getAttribute("data-passkey");
    var nameInput = box.querySelector("[data-passkey-name]");
    button.disabled = true;
    say("Waiting for your passkey…");
    postJSON(button.getAttribute("data-begin"), {})
      .then(function (options) {
        if (kind === "register") {
          return navigator.credentials.create(creationOptions(options)).then(function (cred) {
            return postJSON(button.getAttribute("data-finish"), {
              name: nameInput ? nameInput.value : "",
              credential: attestationJSON(cred)
            });
          });
        }
        return navigator.credentials.get(requestOptions(options)).then(function (cred) {
          say("Checking…");
          return postJSON(button.getAttribute("data-finish"), assertionJSON(cred));
        });
      })
      .then(function (data) {
        say("Done.");
        window.location.assign(localPath(data.redirect) ? data.redirect : "/");
      })
      .catch(function (err) {
        button.disabled = false;
        say(friendly(err), true);
        if (err && localPath(err.redirect)) {
          window.location.assign(err.redirect);
        }
      });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("button[data-passkey]");
    if (button) {
      ev.preventDefault();
      run(button);
    }
  });
})();
