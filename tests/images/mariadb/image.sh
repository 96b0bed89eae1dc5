# swarmctl-test/mariadb:10.11 stands in for the official mariadb:10.11 image (and
# for mysql: it honours the MYSQL_* names as well as MARIADB_*).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --expose 3306
  --entrypoint docker-entrypoint.sh
)
CMD=(mariadbd)
DIRS=(/docker-entrypoint-initdb.d /var/lib/mysql /run/mysqld)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/var/lib/mysql)
