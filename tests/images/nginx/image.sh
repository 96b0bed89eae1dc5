# swarmctl-test/nginx:1.22 stands in for the official nginx:1.22 image (Debian's
# nginx-light): /etc/nginx/nginx.conf includes /etc/nginx/conf.d/*.conf, the
# default server serves /usr/share/nginx/html on port 80, logs go to the
# container's stdout/stderr. Not emulated: /docker-entrypoint.d scripts and
# templates (envsubst).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --expose 80
  # nginx's graceful stop, as upstream.
  --stop-signal SIGQUIT
)
CMD=(nginx -g "daemon off;")
