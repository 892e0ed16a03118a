import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client driven by the Rust tests against the bundled broker.
 * Each command prints what it did, one fact per line, for the test to
 * check; failures are exceptions and a non-zero exit.
 *
 * <pre>
 * produce BOOTSTRAP TOPIC COUNT          idempotent, acks=all; keys k0..k6
 * consume BOOTSTRAP TOPIC GROUP COUNT    group member (range); commits; prints key=value
 * copy BOOTSTRAP IN OUT GROUP TXN_ID COUNT ABORT_EVERY
 *                                        consume-process-produce in transactions with
 *                                        sendOffsetsToTransaction; every ABORT_EVERY-th
 *                                        transaction is aborted and its input re-read
 * read-committed BOOTSTRAP TOPIC COUNT   read_committed, assigned to every partition
 * admin BOOTSTRAP TOPIC GROUP            create topic, describe it and its configs,
 *                                        describe and list the group
 * </pre>
 */
public final class JavaPeer {
    private static final Duration POLL = Duration.ofMillis(200);
    private static final long LIMIT_MS = 60_000;

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args[1], args[2], Integer.parseInt(args[3]));
            case "consume" -> consume(args[1], args[2], args[3], Integer.parseInt(args[4]));
            case "copy" -> copy(args[1], args[2], args[3], args[4], args[5],
                    Integer.parseInt(args[6]), Integer.parseInt(args[7]));
            case "read-committed" -> readCommitted(args[1], args[2], Integer.parseInt(args[3]));
            case "admin" -> admin(args[1], args[2], args[3]);
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    private static Properties producerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return p;
    }

    private static Properties consumerProps(String bootstrap, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return p;
    }

    private static void produce(String bootstrap, String topic, int count) throws Exception {
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k" + (i % 7), Integer.toString(i))));
            }
            long last = -1;
            for (Future<RecordMetadata> f : sent) {
                last = Math.max(last, f.get().offset());
            }
            System.out.println("produced " + count);
        }
    }

    private static void consume(String bootstrap, String topic, String group, int count) {
        Properties p = consumerProps(bootstrap, group);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.RangeAssignor");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(Collections.singletonList(topic));
            int seen = 0;
            long deadline = System.currentTimeMillis() + LIMIT_MS;
            while (seen < count && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                for (ConsumerRecord<String, String> r : records) {
                    System.out.println("record " + r.partition() + " " + r.offset() + " " + r.key() + "=" + r.value());
                    seen++;
                }
                consumer.commitSync();
            }
            System.out.println("consumed " + seen);
        }
    }

    private static void copy(String bootstrap, String in, String out, String group, String txnId,
                             int count, int abortEvery) throws Exception {
        Properties pp = producerProps(bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        Properties cp = consumerProps(bootstrap, group);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        // Small transactions, so that there are many and some are aborted.
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            producer.initTransactions();
            consumer.subscribe(Collections.singletonList(in));
            int committed = 0;
            int transactions = 0;
            int aborted = 0;
            long deadline = System.currentTimeMillis() + LIMIT_MS;
            while (committed < count && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    producer.send(new ProducerRecord<>(out, r.key(), "copied-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()),
                            new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                transactions++;
                if (abortEvery > 0 && transactions % abortEvery == 0) {
                    producer.abortTransaction();
                    aborted++;
                    // Go back to what the group committed: the aborted input again.
                    for (TopicPartition tp : records.partitions()) {
                        OffsetAndMetadata last = consumer.committed(Collections.singleton(tp)).get(tp);
                        consumer.seek(tp, last == null ? 0 : last.offset());
                    }
                } else {
                    producer.commitTransaction();
                    committed += records.count();
                }
            }
            System.out.println("copied " + committed + " in " + transactions + " transactions, " + aborted + " aborted");
        }
    }

    private static void readCommitted(String bootstrap, String topic, int count) {
        Properties p = consumerProps(bootstrap, null);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(topic).forEach(i -> partitions.add(new TopicPartition(topic, i.partition())));
            consumer.assign(partitions);
            int seen = 0;
            long deadline = System.currentTimeMillis() + LIMIT_MS;
            long quietUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < deadline && System.currentTimeMillis() < quietUntil) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                for (ConsumerRecord<String, String> r : records) {
                    System.out.println("record " + r.partition() + " " + r.offset() + " " + r.key() + "=" + r.value());
                    seen++;
                }
                // Past the expected count, wait a little for anything extra.
                if (seen >= count && quietUntil == Long.MAX_VALUE) {
                    quietUntil = System.currentTimeMillis() + 1_000;
                }
            }
            System.out.println("read " + seen);
        }
    }

    private static void admin(String bootstrap, String topic, String group) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            NewTopic newTopic = new NewTopic(topic, 4, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
            admin.createTopics(Collections.singleton(newTopic)).all().get();
            System.out.println("created " + topic);
            TopicDescription description = admin.describeTopics(Collections.singleton(topic))
                    .allTopicNames().get().get(topic);
            System.out.println("partitions " + description.partitions().size());
            System.out.println("topic-id-set " + (description.topicId() != null
                    && !description.topicId().toString().equals("AAAAAAAAAAAAAAAAAAAAAA")));
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(Collections.singleton(resource)).all().get().get(resource);
            System.out.println("retention.ms " + config.get("retention.ms").value());
            System.out.println("names " + admin.listTopics().names().get().contains(topic));
            ConsumerGroupDescription groupDescription = admin.describeConsumerGroups(Collections.singleton(group))
                    .all().get().get(group);
            System.out.println("group-state " + groupDescription.groupState());
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get();
            long total = offsets.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            System.out.println("group-offsets-total " + total);
            admin.deleteTopics(Collections.singleton(topic)).all().get();
            System.out.println("deleted " + topic);
        }
    }
}
