// The crawl's own MongoDB user, allowed to read and write the crawl's database and nothing else
// (the root user stays with the operator). The mongo image runs this once, with the root user, on
// the first start of an empty data volume (/docker-entrypoint-initdb.d): on a volume that already
// holds data, create the user by hand with the same command.
const database = process.env.MONGO_DATABASE || "solidot";
db.getSiblingDB(database).createUser({
  user: process.env.MONGO_CRAWL_USER,
  pwd: process.env.MONGO_CRAWL_PASSWORD,
  roles: [{ role: "readWrite", db: database }],
});
