"""nregions on 80 random NATS-TSS cells (cifar10, real images): Spearman with FreeREA's cached nregions and
Kendall tau with test accuracy.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/nregions_vs_freerea.py
"""
import random, numpy as np, csv, gzip, sys
from scipy.stats import spearmanr, kendalltau
from nasx.data import load_images
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.tenas import LinearRegions
import os
D=os.environ['NASX_DATA']
space=NatsTopologySpace(dataset='cifar10'); b=load_images(f'{D}/cifar10_test_512_jpeg.npz','cifar10')
ref={int(r['index']):float(r['cifar10_nregions']) for r in csv.DictReader(gzip.open(f'{D}/nats_tss_freerea_proxies.csv.gz','rt'))}
acc={int(r['index']):float(r['cifar10_test_acc']) for r in csv.DictReader(gzip.open(f'{D}/nats_tss.csv.gz','rt'))}
idx=random.Random(1).sample(range(15625),80)
for opt in [dict(samples=1000, patch=3)]:  # the defaults (smaller patches do not fit the reductions)
    p=LinearRegions(**opt); ev=Evaluator(space,[p],b)
    v=np.array([ev.evaluate(space.genotype_at(i)).scores['nregions'] for i in idx])
    print(opt, np.percentile(v,[0,50,100]), 'rho_freerea', spearmanr(v,[ref[i] for i in idx])[0], 'tau_acc', kendalltau(v,[acc[i] for i in idx])[0])
print('freerea tau', kendalltau([ref[i] for i in idx],[acc[i] for i in idx])[0])
