# swarmctl-test/testapp:latest, on swarmctl-test/busybox:latest. build.sh puts
# /testapp (our release build), its shared libraries and the loader into it.
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --expose 8080
  --entrypoint /testapp
)
CMD=(serve)
