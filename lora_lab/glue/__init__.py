"""The front ends every host mounts: `tabs/` (the gradio tab and its sub-tabs) and `api/` (the HTTP
routes). They talk to a `lora_lab.host.Host` and never to a WebUI or an adapter: the hosts mount
them (`hosts/webui/register`, `hosts/standalone/app`)."""
