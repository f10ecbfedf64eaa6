"""A plain HTTP client for the web tests: raw paths sent as written, cookies by hand, no redirects followed."""
from __future__ import annotations

import http.client
import json
import re
import uuid
from urllib.parse import urlencode, urlsplit


class Answer:
    def __init__(self, response: http.client.HTTPResponse):
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.set_cookies = response.msg.get_all("Set-Cookie") or []
        self.body = response.read()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class Client:
    def __init__(self, base: str, cookie: str | None = None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.cookies = {"digitize_session": cookie} if cookie else {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            sent = dict(headers or {})
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
            connection.request(method, path, body=body, headers=sent)
            answer = Answer(connection.getresponse())
        finally:
            connection.close()
        for header in answer.set_cookies:
            name, value = header.split(";", 1)[0].split("=", 1)
            if "max-age=0" in header.lower() or not value.strip('"'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return answer

    def get(self, path: str, **headers) -> Answer:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, fields: dict, headers: dict | None = None) -> Answer:
        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def post_json(self, path: str, payload, headers: dict | None = None) -> Answer:
        return self.request("POST", path, json.dumps(payload).encode(),
                            {"Content-Type": "application/json", **(headers or {})})

    def post_file(self, path: str, fields: dict, name: str, data: bytes) -> Answer:
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                 for key, value in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request("POST", path, b"".join(parts),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def login(self, name: str, password: str) -> Answer:
        """As a browser does: the form (its CSRF token and cookie), then the post."""
        form = self.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        return self.post_form("/login", {"name": name, "password": password, "next": "/", "csrf": token})

    def csrf(self) -> str:
        return self.get("/api/session").json()["csrf"]
